"""The energy plot: predicted against actual loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lib.core.plots import DPI
from lib.energy.plots import predicted_vs_actual

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _open_png(path: Path) -> Image.Image:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = Image.open(path)
    image.verify()  # checks the chunks' CRCs: a truncated write fails here
    return Image.open(path)


def test_predicted_vs_actual_writes_one_panel_per_output(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    actual = {"Y1": rng.uniform(6, 43, 20), "Y2": rng.uniform(10, 48, 20)}
    predicted = {name: values + rng.normal(0, 1, 20) for name, values in actual.items()}
    target = tmp_path / "plots" / "predicted_vs_actual.png"
    assert predicted_vs_actual(actual, predicted, target) == target
    image = _open_png(target)
    assert image.format == "PNG"
    # 5 inches per output wide, 4.5 inches high, at DPI pixels per inch.
    assert image.size == (2 * 5 * DPI, int(4.5 * DPI))
    assert sorted(path.name for path in target.parent.iterdir()) == ["predicted_vs_actual.png"]


def test_predicted_vs_actual_accepts_column_vectors(tmp_path: Path) -> None:
    actual = {"Y1": np.array([[1.0], [2.0], [3.0]])}
    predicted = {"Y1": np.array([[1.1], [1.9], [3.2]])}
    image = _open_png(predicted_vs_actual(actual, predicted, tmp_path / "one.png"))
    assert image.size == (5 * DPI, int(4.5 * DPI))
