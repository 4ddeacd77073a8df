"""One progress bar per training on the terminal, drawn on Prefect's own console.

Prefect prints its log lines through a rich `Console` held by its console handler on the
root logger (`PrefectConsoleHandler.console`, writing to stderr). The bar is a rich
`Progress` on that very console: rich then prints each log line above the live bar instead
of through it, so the two never garble each other. Another console on the same stderr would
not know about the bar and would overwrite it mid-line.

No bar when that console is not a terminal (CI, a pipe, a log file): a redrawn bar there is
a stream of carriage returns, and the Prefect log lines every tenth of the epochs
(`tasks.progress`) already tell how training goes. No bar either when the console log is
silenced (`trainflow run --quiet`) or absent.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect.logging.handlers import PrefectConsoleHandler
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

REFRESHES_PER_SECOND = 2  # the ETA ticks between epochs; more would only cost CPU
BAR_WIDTH = 12  # the whole line fits 80 columns: "energy ━━━ epoch 30/300  loss ...  ETA 00:33"
UNKNOWN = "–"
BAR_STYLE, DONE_STYLE, FINISHED_STYLE = "bright_black", "magenta", "green"


def terminal_console() -> Console | None:
    """Prefect's console when it shows INFO lines on a terminal, else None (no bar)."""
    info = logging.makeLogRecord({"levelno": logging.INFO, "levelname": "INFO"})
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            shows_info = handler.level <= logging.INFO and bool(handler.filter(info))
            return handler.console if shows_info and handler.console.is_terminal else None
    return None


def _shown(value: float | None) -> str:
    return UNKNOWN if value is None else f"{value:.3g}"


class EpochBar:
    """Epochs done of total, loss, val_loss and ETA, on one line that moves epoch by epoch.

    The bar appears at the first finished epoch, not before: TensorFlow's import, which
    happens in between, captures stderr for a moment (`lib.core.quiet`) and would swallow
    the redraws. It starts where that first epoch is (a resumed fit starts part-way), and
    the ETA leaves that first epoch out, as it includes the graph's tracing.
    """

    def __init__(self, console: Console, label: str) -> None:
        """Draw on `console` (`terminal_console`'s); `label` says what trains in a word."""
        self._progress = Progress(
            TextColumn("{task.description}"),
            # Prefect's console has a theme of its own without rich's named styles
            # ("bar.back", ...): a bar drawn with those fails, so colours are given here.
            BarColumn(
                bar_width=BAR_WIDTH,
                style=BAR_STYLE,
                complete_style=DONE_STYLE,
                finished_style=FINISHED_STYLE,
                pulse_style=DONE_STYLE,
            ),
            TextColumn("epoch"),
            MofNCompleteColumn(),
            TextColumn(" loss {task.fields[loss]}  val_loss {task.fields[val_loss]}  ETA"),
            TimeRemainingColumn(compact=True),
            console=console,
            refresh_per_second=REFRESHES_PER_SECOND,
        )
        self._label = label
        self._task: TaskID | None = None

    def show(self, epoch: int, total: int, loss: float | None, val_loss: float | None) -> None:
        """Draw epoch `epoch` (1-based) of `total` with its losses."""
        losses: dict[str, Any] = {"loss": _shown(loss), "val_loss": _shown(val_loss)}
        first = self._task is None
        if self._task is None:  # the columns read the losses: they go in with the task
            self._task = self._progress.add_task(
                self._label, total=total, completed=epoch - 1, **losses
            )
        self._progress.update(self._task, completed=epoch, **losses)
        if first:  # drawn from this epoch on, never at the one before it
            self._progress.start()

    def close(self) -> None:
        """Stop redrawing; the last state stays on screen above what follows."""
        if self._task is not None:
            self._progress.stop()
