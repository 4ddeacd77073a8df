"""Energy figures: predicted against actual loads, one scatter per output."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lib.core.plots import save_figure


def predicted_vs_actual(
    actual: Mapping[str, np.ndarray], predicted: Mapping[str, np.ndarray], target: Path
) -> Path:
    """One scatter per output with the identity line: points off the line are errors."""
    names = list(actual)
    figure = Figure(figsize=(5 * len(names), 4.5))
    for i, name in enumerate(names):
        axes = figure.add_subplot(1, len(names), i + 1)
        truth, guess = np.ravel(actual[name]), np.ravel(predicted[name])
        low, high = float(min(truth.min(), guess.min())), float(max(truth.max(), guess.max()))
        axes.scatter(truth, guess, s=12, alpha=0.7)
        axes.plot([low, high], [low, high], color="black", linewidth=1)
        axes.set(title=f"{name}: predicted vs actual", xlabel="actual", ylabel="predicted")
    return save_figure(figure, target)
