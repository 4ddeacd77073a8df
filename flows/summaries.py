"""The end of `trainflow run`: a table per pipeline for people, one JSON document for scripts."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import RenderableType

    from tasks.descriptors import RunSummary

JSON_HELP = (
    "--json prints one JSON list on stdout, an object per pipeline in the order they ran: "
    '"pipeline", "error" (null, or the message of a pipeline that failed; a failed one has '
    'no other key), "model", "version", "version_url" (its MLflow UI page), "promoted", '
    '"newly_registered", "reason", "metrics" and "champion_metrics" (test metrics of this '
    "version and of the champion it was judged against, or null; a metric that is not a "
    'number is null), "champion_version", "epochs", "train_seconds", "drift" (the run\'s '
    "data against the champion's training data, in words). Everything else goes to stderr."
)

DETAIL_LABEL_WIDTH = len("decision")


@dataclass(frozen=True)
class Outcome:
    """How one pipeline of a `trainflow run` ended: its summary, or the message of its error."""

    pipeline: str
    summary: RunSummary | None = None
    error: str | None = None


def as_json(outcomes: Sequence[Outcome]) -> str:
    """The document `--json` prints (its keys are listed in `JSON_HELP`).

    Strict JSON: a metric that is not a number (a champion that could not be scored has
    NaN) is null, as pydantic writes it, not Python's bare ``NaN`` that `jq` refuses.
    """
    document: list[dict[str, Any]] = []
    for outcome in outcomes:
        entry: dict[str, Any] = {"pipeline": outcome.pipeline, "error": outcome.error}
        if outcome.summary is not None:
            entry.update(json.loads(outcome.summary.model_dump_json(exclude={"pipeline"})))
        document.append(entry)
    return json.dumps(document, indent=2, allow_nan=False)


def print_tables(summaries: Sequence[RunSummary], file: TextIO) -> None:
    """Print a table per pipeline; as wide as the terminal, 80 columns when not a terminal."""
    from rich.console import Console

    on_terminal = file.isatty()
    # Off a terminal, render to text first: rich pads wrapped lines to the table's width,
    # and trailing blanks in a log file or a pipe are noise for whoever greps it.
    text = io.StringIO()
    console = Console(file=file if on_terminal else text, highlight=False)
    for summary in summaries:
        console.print()
        console.print(summary_table(summary))
    file.write("".join(line.rstrip() + "\n" for line in text.getvalue().splitlines()))


def summary_table(summary: RunSummary) -> RenderableType:
    """Heading, test metrics beside the champion's, decision, training and the MLflow link."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    state = "new version" if summary.newly_registered else "no new version"
    verdict = "champion" if summary.promoted else "not promoted"
    heading = f"{summary.pipeline}: {summary.model} v{summary.version} ({state}, {verdict})"
    metrics = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    metrics.add_column("test metric")
    metrics.add_column(f"v{summary.version}", justify="right")
    rival = summary.champion_metrics
    if summary.champion_version == summary.version:
        rival = None  # the champion is this very version: the same numbers twice
    if rival is not None:
        metrics.add_column(f"champion v{summary.champion_version}", justify="right")
    for name, value in summary.metrics.items():
        row = [name, f"{value:.4f}"]
        if rival is not None:
            row.append(f"{rival[name]:.4f}" if name in rival else "")
        metrics.add_row(*row)
    details = {
        "decision": summary.reason,
        "trained": f"{summary.epochs} epochs in {summary.train_seconds:.1f} s",
        **({"drift": summary.drift} if summary.drift else {}),
        "MLflow": summary.version_url,
    }
    return Group(
        Text(heading, style="bold"),
        metrics,
        Text(""),
        *(_detail(label, value) for label, value in details.items()),
    )


def _detail(label: str, value: str) -> RenderableType:
    """``label  value``, a long value wrapped under itself; a grid of its own per row, so that
    no line is padded to the width of a longer one."""
    from rich.table import Table

    row = Table.grid(padding=(0, 2))
    row.add_column(style="bold", min_width=DETAIL_LABEL_WIDTH)
    row.add_column(overflow="fold")
    row.add_row(label, value)
    return row
