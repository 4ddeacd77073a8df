"""Siamese figures: distance histograms, the ROC curve and a grid of labelled pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lib.core.plots import save_figure
from lib.siamese.pairs import Pairs

HISTOGRAM_BINS = 50
HEADROOM = 1.05  # the histograms' x axis reaches a little past the largest distance
PAIR_GRID_COLUMNS = 4
PAIR_GRID_HEADER = 0.5  # inches above the panels for the figure's title


def distance_histograms(
    distances: np.ndarray, labels: np.ndarray, threshold: float, target: Path
) -> Path:
    """Distances of same-class and different-class pairs, with the decision threshold."""
    return save_figure(distance_histograms_figure(distances, labels, threshold), target)


def distance_histograms_figure(
    distances: np.ndarray, labels: np.ndarray, threshold: float
) -> Figure:
    """The figure `distance_histograms` writes: the overlap around the line is the error."""
    distances, labels = np.ravel(distances), np.ravel(labels)
    # Shared bins, so the two groups' bars line up and their overlap reads directly.
    upper = max(float(distances.max()), threshold) * HEADROOM
    bins = np.linspace(0.0, upper, HISTOGRAM_BINS + 1).tolist()
    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot(1, 1, 1)
    for value, name in ((1, "same class"), (0, "different class")):
        axes.hist(distances[labels == value], bins=bins, alpha=0.6, label=name)
    axes.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3g}")
    axes.set(title="pair distances", xlabel="distance", ylabel="pairs")
    axes.legend()
    return figure


def roc_plot(fpr: np.ndarray, tpr: np.ndarray, auc: float, target: Path) -> Path:
    """The ROC curve of "same class" against the chance diagonal, its area in the legend."""
    return save_figure(roc_figure(fpr, tpr, auc), target)


def roc_figure(fpr: np.ndarray, tpr: np.ndarray, auc: float) -> Figure:
    """The figure `roc_plot` writes."""
    figure = Figure(figsize=(5, 5))
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(fpr, tpr, label=f"ROC (AUC = {auc:.4f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    axes.set(
        title="ROC: same class",
        xlabel="false positive rate",
        ylabel="true positive rate",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    axes.legend(loc="lower right")
    return figure


def pair_grid(
    images: np.ndarray,
    pairs: Pairs,
    distances: np.ndarray,
    threshold: float,
    target: Path,
    n: int = 12,
) -> Path:
    """The first `n` pairs side by side, each titled with the prediction and the truth."""
    return save_figure(pair_grid_figure(images, pairs, distances, threshold, n), target)


def pair_grid_figure(
    images: np.ndarray, pairs: Pairs, distances: np.ndarray, threshold: float, n: int = 12
) -> Figure:
    """The figure `pair_grid` writes; a panel titled in red is a wrong prediction.

    Each panel's title says which word is the model's ("prediction", with the distance it
    came from) and which the data's ("truth"): a bare "same (ok)" left a reader guessing.

    Raises:
        ValueError: when `n` < 1 or `distances` does not have one value per pair.
    """
    distances = np.ravel(distances)
    if len(distances) != len(pairs):
        raise ValueError(
            "Expected one distance per pair. "
            f"Received: {len(distances)} distances, {len(pairs)} pairs"
        )
    if n < 1:
        raise ValueError(f"Expected n >= 1. Received: n={n}")
    shown = min(n, len(pairs))
    rows = -(-shown // PAIR_GRID_COLUMNS)
    columns = min(shown, PAIR_GRID_COLUMNS)
    figure = Figure(figsize=(2.6 * columns, 2.0 * rows + PAIR_GRID_HEADER))
    figure.suptitle(
        f"Test pairs, left | right: prediction 'same' when distance d < {threshold:.3g}; "
        "red = wrong prediction",
        fontsize=10,
    )
    for k in range(shown):
        axes = figure.add_subplot(rows, columns, k + 1)
        # Left and right image side by side with a one-pixel white gutter.
        gutter = np.full((images.shape[1], 1), 255, dtype=images.dtype)
        axes.imshow(
            np.hstack([images[pairs.left[k]], gutter, images[pairs.right[k]]]),
            cmap="gray_r",
            vmin=0,
            vmax=255,
        )
        said_same = bool(distances[k] < threshold)
        truly_same = bool(pairs.label[k])
        axes.set_title(
            f"prediction: {_word(said_same)} (d={distances[k]:.2f})\ntruth: {_word(truly_same)}",
            fontsize=9,
            color="black" if said_same == truly_same else "red",
        )
        axes.set_axis_off()
    return figure


def _word(same: bool) -> str:
    return "same" if same else "different"
