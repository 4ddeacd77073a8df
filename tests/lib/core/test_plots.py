"""Plots: each writes a whole, valid PNG; loss curves switch to a log axis across decades."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lib.core.plots import (
    DPI,
    LOG_SCALE_SPAN,
    learning_curves,
    learning_curves_figure,
    psi_bars,
    psi_bars_figure,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _open_png(path: Path) -> Image.Image:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = Image.open(path)
    image.verify()  # checks the chunks' CRCs: a truncated write fails here
    return Image.open(path)


def test_learning_curves_writes_a_png(tmp_path: Path) -> None:
    history = {"loss": [4.0, 2.0, 1.5, 1.2], "val_loss": [4.5, 2.5, 2.0, 1.9]}
    target = tmp_path / "learning_curves.png"
    assert learning_curves(history, target) == target
    image = _open_png(target)
    assert image.size == (7 * DPI, int(4.5 * DPI))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["learning_curves.png"]


def test_learning_curves_without_validation_loss(tmp_path: Path) -> None:
    image = _open_png(learning_curves({"loss": [1.0, 0.5]}, tmp_path / "train_only.png"))
    assert image.size[0] > 0 and image.size[1] > 0


@pytest.mark.parametrize(
    ("history", "scale"),
    [
        ({"loss": [500.0, 10.0, 2.0], "val_loss": [600.0, 20.0, 3.0]}, "log"),  # 300x
        ({"loss": [4.0, 2.0, 1.0], "val_loss": [5.0, 3.0, 2.0]}, "linear"),  # 5x
        ({"loss": [1.0], "val_loss": [LOG_SCALE_SPAN * 1.0]}, "linear"),  # exactly the span
        ({"loss": [0.0, 50.0, 0.1]}, "log"),  # zeros are ignored, 50 / 0.1 = 500x
        ({"loss": [0.0, -1.0]}, "linear"),  # nothing positive to take a log of
        pytest.param(
            {"accuracy": [0.001, 0.9]},
            "linear",
            marks=pytest.mark.filterwarnings("ignore:No artists with labels"),
            id="only-losses-decide",
        ),
    ],
)
def test_learning_curves_use_a_log_axis_when_losses_span_decades(
    history: dict[str, list[float]], scale: str
) -> None:
    (axes,) = learning_curves_figure(history).axes
    assert axes.get_yscale() == scale


def test_learning_curves_figure_plots_one_line_per_loss() -> None:
    (axes,) = learning_curves_figure({"loss": [3.0, 2.0, 1.0], "val_loss": [3.5, 2.5, 2.0]}).axes
    lines = {line.get_label(): line for line in axes.get_lines()}
    assert set(lines) == {"loss", "val_loss"}
    np.testing.assert_array_equal(lines["loss"].get_xdata(), [1, 2, 3])  # epochs count from 1


def test_psi_bars_show_flagged_columns_in_red_under_the_verdict(tmp_path: Path) -> None:
    import pandas as pd

    from lib.core.drift import PSI_THRESHOLD, compare_frames

    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"calm": rng.normal(size=300), "moved": rng.normal(size=300)})
    incoming = pd.DataFrame({"calm": rng.normal(size=300), "moved": rng.normal(2, size=300)})
    report = compare_frames(reference, incoming, ["calm", "moved"])
    axes = psi_bars_figure(report).axes[0]
    calm, moved = axes.patches
    assert calm.get_facecolor() != moved.get_facecolor()
    assert moved.get_height() == pytest.approx(report.columns[1].psi)
    assert [line.get_ydata()[0] for line in axes.lines] == [PSI_THRESHOLD]
    assert axes.get_title() == "drift in moved (300 rows; 300 reference rows)"
    _open_png(psi_bars(report, tmp_path / "drift.png"))
