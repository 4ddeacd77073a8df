"""The picture of a sweep: each trial's validation score, the winner marked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from lib.core.plots import save_figure

BAR_HEIGHT_INCHES = 0.35
MIN_HEIGHT_INCHES = 2.5
WIDTH_INCHES = 8


def validation_scores(
    labels: Sequence[str], scores: Sequence[float], winner: int, score_name: str, target: Path
) -> Path:
    """One horizontal bar per trial, in grid order, the winner's highlighted; a PNG at `target`."""
    height = max(MIN_HEIGHT_INCHES, BAR_HEIGHT_INCHES * len(labels) + 1)
    figure = Figure(figsize=(WIDTH_INCHES, height))
    axes = figure.add_subplot()
    colors = ["tab:orange" if i == winner else "tab:blue" for i in range(len(labels))]
    positions = range(len(labels))
    axes.barh(positions, scores, color=colors)
    axes.set_yticks(list(positions), labels=list(labels))
    axes.invert_yaxis()  # the first trial on top, as in the table
    axes.set_xlabel(f"validation {score_name}")
    axes.set_title(f"{len(labels)} trials; the winner in orange")
    return save_figure(figure, target)
