"""The end of `trainflow sweep`: the trials as a table, then the winner's `run` summary."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, TextIO

from flows.summaries import summary_table
from lib.core.sweep import shown_score

if TYPE_CHECKING:
    from rich.console import RenderableType

    from tasks.sweep import SweepSummary

SWEEP_JSON_HELP = (
    '--json prints one JSON object on stdout: "pipeline", "score" (the validation metric '
    'the winner was picked by) and "lower_is_better", "trials" (each with "index", "label", '
    '"seed", "values", "validation" metrics, "worker" and "pid" it ran on, "trained": false '
    'when cached, and its "model" files), "winner" (a trial\'s index), "run" (the winner on '
    'the test data, as `trainflow run --json` describes a pipeline), "cluster", '
    '"cluster_seconds", "trials_seconds". Everything else goes to stderr.'
)


def sweep_json(summary: SweepSummary) -> str:
    """The document `--json` prints (keys in `SWEEP_JSON_HELP`); NaN is null, as in `run`."""
    return json.dumps(json.loads(summary.model_dump_json()), indent=2, allow_nan=False)


def print_sweep(summary: SweepSummary, file: TextIO) -> None:
    """The trials table and the winner's summary; 80 columns and no padding off a terminal."""
    from rich.console import Console

    on_terminal = file.isatty()
    text = io.StringIO()
    console = Console(file=file if on_terminal else text, highlight=False)
    console.print()
    console.print(trials_table(summary))
    console.print()
    console.print(summary_table(summary.run))
    file.write("".join(line.rstrip() + "\n" for line in text.getvalue().splitlines()))


def trials_table(summary: SweepSummary) -> RenderableType:
    """One row per trial: what it tried, its validation score, where it ran, the winner."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    direction = "lower" if summary.lower_is_better else "higher"
    trained = sum(trial.trained for trial in summary.trials)
    heading = (
        f"{summary.pipeline} sweep: {len(summary.trials)} trials, {trained} trained, "
        f"{len(summary.trials) - trained} cached"
    )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("#", justify="right")
    table.add_column("trial")
    table.add_column(f"val {summary.score}", justify="right")
    table.add_column("ran on")
    table.add_column("")
    for trial in summary.trials:
        table.add_row(
            str(trial.index),
            trial.label,
            shown_score(trial.validation.metrics[summary.score]),
            f"{trial.worker.removeprefix('dask ')} pid {trial.pid}",
            ("winner" if trial.index == summary.winner else "")
            + ("" if trial.trained else " cached"),
        )
    footer = (
        f"winner: trial {summary.winner} ({direction} validation {summary.score} is better)\n"
        f"ran on {summary.cluster} (started in {summary.cluster_seconds:.1f} s); the trials "
        f"took {summary.trials_seconds:.1f} s"
    )
    return Group(Text(heading, style="bold"), table, Text(footer))
