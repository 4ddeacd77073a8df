"""A sweep's report in the Prefect UI: the trials as a table, their validation scores plotted.

Published from the flow run, as `tasks.report` does, so a re-run that trains nothing still
says what it found. The winner's own report (test metrics, gate, drift) is `tasks.report`'s.
"""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from lib.core.sweep import shown_score
from tasks.report import _image
from tasks.storage import output_dir, stored
from tasks.sweep import SweepSummary

PLOT_STEP = "lib.core.sweep_plot"


def trial_rows(summary: SweepSummary) -> list[dict[str, str]]:
    """One row per trial: what it tried, its validation score, where it ran, and the winner."""
    return [
        {
            "trial": str(trial.index),
            "tried": trial.label,
            f"validation {summary.score}": shown_score(trial.validation.metrics[summary.score]),
            "epochs": str(trial.model.epochs_run),
            "ran on": f"{trial.worker} (pid {trial.pid})",
            "trained": "trained" if trial.trained else "cached",
            "winner": "winner" if trial.index == summary.winner else "",
        }
        for trial in summary.trials
    ]


def publish_sweep_report(summary: SweepSummary) -> str:
    """The `<pipeline>-sweep` report (table and plot) and `<pipeline>-sweep-trials` table.

    Returns the report's markdown.
    """
    from lib.core.sweep_plot import validation_scores

    folder = output_dir(
        "reports/sweeps",
        *(trial.model.model.sha256 for trial in summary.trials),
        summary.score,
        entry=PLOT_STEP,
    )
    plot = validation_scores(
        [trial.label for trial in summary.trials],
        [trial.validation.metrics[summary.score] for trial in summary.trials],
        summary.winner,
        summary.score,
        folder / "validation-scores.png",
    )
    rows = trial_rows(summary)
    header = list(rows[0])
    direction = "lowest" if summary.lower_is_better else "highest"
    winner = summary.trials[summary.winner]
    run = summary.run
    lines = [
        f"# {summary.pipeline} sweep: {len(rows)} trials on {summary.cluster}",
        f"**Winner:** trial {winner.index} ({winner.label}), the {direction} validation "
        f"{summary.score}. On the test data it became {run.model} version {run.version}: "
        f"{run.reason}.",
        "\n".join(
            [
                "| " + " | ".join(header) + " |",
                "|" + "---|" * len(header),
                *("| " + " | ".join(row.values()) + " |" for row in rows),
            ]
        ),
        _image(stored(plot)),
        f"Cluster started in {summary.cluster_seconds:.1f} s; the trials took "
        f"{summary.trials_seconds:.1f} s on it.",
    ]
    markdown = "\n\n".join(lines)
    create_markdown_artifact(
        markdown=markdown, key=f"{summary.pipeline}-sweep", description="sweep trials"
    )
    create_table_artifact(
        table=rows, key=f"{summary.pipeline}-sweep-trials", description="validation scores"
    )
    return markdown
