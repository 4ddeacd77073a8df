"""Figures a person would rather look at than a table, written to PNG.

Uses matplotlib's object API on an Agg canvas: no global pyplot state, nothing shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lib.core.atomic import atomic_path

if TYPE_CHECKING:
    from lib.core.drift import DriftReport

DPI = 100
# Loss curves spanning more than this ratio are drawn on a log axis, so late epochs stay visible.
LOG_SCALE_SPAN = 100
# PSI bars reaching this many times the threshold get an axis linear up to the threshold and
# logarithmic above: a PSI of 8 would otherwise flatten the bars that matter near 0.2.
PSI_SYMLOG_SPAN = 5


def save_figure(figure: Figure, target: Path) -> Path:
    """Render `figure` to a PNG at `target`, atomically: a reader never sees half a picture."""
    FigureCanvasAgg(figure)
    figure.tight_layout()
    with atomic_path(target) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI)
    return target


def learning_curves(history: Mapping[str, Sequence[float]], target: Path) -> Path:
    """Training and validation loss per epoch (log scale when it spans decades)."""
    return save_figure(learning_curves_figure(history), target)


def learning_curves_figure(history: Mapping[str, Sequence[float]]) -> Figure:
    """The figure `learning_curves` writes, for callers (and tests) that inspect its axes."""
    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot(1, 1, 1)
    for key in ("loss", "val_loss"):
        if key in history:
            axes.plot(np.arange(1, len(history[key]) + 1), history[key], label=key)
    values = [v for key in ("loss", "val_loss") for v in history.get(key, []) if v > 0]
    if values and max(values) / min(values) > LOG_SCALE_SPAN:
        axes.set_yscale("log")
    axes.set(title="learning curves", xlabel="epoch", ylabel="loss")
    axes.legend()
    return figure


def psi_bars(report: DriftReport, target: Path) -> Path:
    """PSI per column against the threshold line: which columns moved, and how far."""
    return save_figure(psi_bars_figure(report), target)


def psi_bars_figure(report: DriftReport) -> Figure:
    """The figure `psi_bars` writes: flagged columns in red, the PSI threshold dashed."""
    from lib.core.drift import PSI_THRESHOLD

    names = [column.name for column in report.columns]
    figure = Figure(figsize=(max(4.0, 0.7 * len(names) + 2), 4))
    axes = figure.add_subplot(1, 1, 1)
    colours = ["tab:red" if column.flagged else "tab:blue" for column in report.columns]
    axes.bar(names, [column.psi for column in report.columns], color=colours)
    axes.axhline(PSI_THRESHOLD, color="black", linestyle="--", label=f"PSI {PSI_THRESHOLD}")
    if max(column.psi for column in report.columns) > PSI_SYMLOG_SPAN * PSI_THRESHOLD:
        axes.set_yscale("symlog", linthresh=PSI_THRESHOLD)
    axes.set(title=f"{report.verdict()} ({report.sizes()})"[:90], ylabel="PSI (red: flagged)")
    axes.legend()
    return figure
