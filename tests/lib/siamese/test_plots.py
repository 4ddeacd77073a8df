"""Siamese plots: distance histograms, ROC, a grid of pairs; whole PNGs with the right marks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.patches import Rectangle
from PIL import Image

from lib.siamese.metrics import roc_auc, roc_curve
from lib.siamese.pairs import Pairs
from lib.siamese.plots import (
    distance_histograms,
    distance_histograms_figure,
    pair_grid,
    pair_grid_figure,
    roc_figure,
    roc_plot,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RNG = np.random.default_rng(0)
LABELS = np.array([1, 0] * 20)
DISTANCES = np.abs(RNG.normal(0.3, 0.2, 40)) + 0.6 * (1 - LABELS)


def _assert_whole_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()  # checks the chunks' CRCs: a truncated write fails here
    # Written temp-then-rename: nothing but the target is left in the folder.
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def _pairs(n: int) -> Pairs:
    return Pairs(
        left=np.arange(n, dtype=np.int32),
        right=np.arange(n, dtype=np.int32)[::-1].copy(),
        label=np.array([1, 0] * (n // 2), dtype=np.uint8),
    )


def test_distance_histograms_writes_a_png(tmp_path: Path) -> None:
    target = tmp_path / "plots" / "distances.png"
    assert distance_histograms(DISTANCES, LABELS, 0.5, target) == target
    _assert_whole_png(target)


def test_distance_histograms_show_both_groups_and_the_threshold() -> None:
    (axes,) = distance_histograms_figure(DISTANCES, LABELS, 0.45).axes
    bars = [patch for patch in axes.patches if isinstance(patch, Rectangle)]
    heights = np.array([bar.get_height() for bar in bars]).reshape(2, -1)
    # One histogram per group, each counting its 20 pairs.
    assert heights.sum(axis=1).tolist() == [20, 20]
    (line,) = axes.get_lines()
    assert list(line.get_xdata()) == [0.45, 0.45]
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["same class", "different class", "threshold 0.45"]


def test_roc_plot_draws_the_curve_with_its_area(tmp_path: Path) -> None:
    fpr, tpr, _ = roc_curve(LABELS, -DISTANCES)
    auc = roc_auc(LABELS, -DISTANCES)
    target = tmp_path / "roc.png"
    assert roc_plot(fpr, tpr, auc, target) == target
    _assert_whole_png(target)
    (axes,) = roc_figure(fpr, tpr, auc).axes
    curve, chance = axes.get_lines()
    np.testing.assert_allclose(curve.get_xdata(), fpr)
    np.testing.assert_allclose(curve.get_ydata(), tpr)
    assert list(chance.get_xdata()) == [0, 1]
    assert f"AUC = {auc:.4f}" in axes.get_legend().get_texts()[0].get_text()


def test_pair_grid_writes_a_png(tmp_path: Path) -> None:
    images = RNG.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    target = tmp_path / "pairs.png"
    assert pair_grid(images, _pairs(12), np.linspace(0.1, 1.2, 12), 0.5, target) == target
    _assert_whole_png(target)


def test_pair_grid_titles_say_prediction_and_truth_and_mark_mistakes() -> None:
    images = RNG.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    # labels 1, 0, 1, 0; distances make pair 0 right (same), 1 wrong (called same),
    # 2 wrong (called different), 3 right (different).
    figure = pair_grid_figure(images, _pairs(4), np.array([0.1, 0.2, 0.9, 0.8]), 0.5)
    titles = [axes.get_title() for axes in figure.axes]
    assert titles == [
        "prediction: same (d=0.10)\ntruth: same",
        "prediction: same (d=0.20)\ntruth: different",
        "prediction: different (d=0.90)\ntruth: same",
        "prediction: different (d=0.80)\ntruth: different",
    ]
    assert figure.get_suptitle() == (
        "Test pairs, left | right: prediction 'same' when distance d < 0.5; red = wrong prediction"
    )
    colours = [axes.title.get_color() for axes in figure.axes]
    assert colours == ["black", "red", "red", "black"]
    # Each panel shows the left image, a one-pixel gutter, then the right image.
    shown = figure.axes[1].get_images()[0].get_array()
    np.testing.assert_array_equal(shown[:, :28], images[1])
    np.testing.assert_array_equal(shown[:, 29:], images[2])


def test_pair_grid_shows_at_most_n_pairs() -> None:
    images = RNG.integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    distances = np.linspace(0, 1, 20)
    assert len(pair_grid_figure(images, _pairs(20), distances, 0.5, n=6).axes) == 6
    assert len(pair_grid_figure(images, _pairs(4), distances[:4], 0.5, n=12).axes) == 4


def test_pair_grid_rejects_mismatched_distances_and_bad_n() -> None:
    images = RNG.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    with pytest.raises(ValueError, match="one distance per pair. Received: 3 distances, 4 pairs"):
        pair_grid_figure(images, _pairs(4), np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="n >= 1. Received: n=0"):
        pair_grid_figure(images, _pairs(4), np.zeros(4), 0.5, n=0)
