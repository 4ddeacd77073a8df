"""Run reports as Prefect artifacts: what a person opens in the UI after a run.

Published from the flow run, not from a task: an artifact made inside a task that is later
Cached is not made again, and every run, a warm re-run too, must say what it did.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from lib.core.drift import (
    KS_ALPHA,
    KS_MIN_STATISTIC,
    MIN_PSI_ROWS,
    PSI_THRESHOLD,
    DriftReport,
    markdown_table,
)
from lib.core.refs import FileRef
from lib.core.settings import load_settings
from tasks.descriptors import DriftRef
from tasks.storage import local_path

if TYPE_CHECKING:
    from lib.core.registry import Registration

DRIFT_RULES = (
    f"A column drifts when its PSI is at least {PSI_THRESHOLD} (on at least {MIN_PSI_ROWS} "
    f"incoming rows), when its KS statistic is at least {KS_MIN_STATISTIC} at p below "
    f"{KS_ALPHA}, or when it holds codes the champion never learned from "
    "(`lib/core/drift.py` says why). Drift does not stop training: retraining on data that "
    "moved is what a run is for; the gate alone decides promotion."
)


def _image(ref: FileRef) -> str:
    """Inline PNG: the UI shows the picture itself, not a link to a file it cannot reach."""
    encoded = base64.b64encode(local_path(ref).read_bytes()).decode()
    return f"![{Path(ref.path).stem}](data:image/png;base64,{encoded})"


def counts(sizes: Mapping[str, int]) -> str:
    """Sizes by part, as a person reads them: "train 537 · validation 77 · test 154"."""
    return " · ".join(f"{part} {size}" for part, size in sizes.items())


def shown(value: object) -> str:
    """A parameter as a person reads it: no Python reprs (`None`, `{...}`) in a report."""
    if value is None:
        return "not set"
    if isinstance(value, Mapping):
        return " · ".join(f"{key} {shown(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(map(shown, value))
    return str(value)


def metrics_rows(
    candidate: Mapping[str, float], champion: Mapping[str, float] | None
) -> list[dict[str, str]]:
    """One row per metric, candidate and champion side by side."""
    return [
        {
            "metric": name,
            "candidate": f"{value:.4f}",
            "champion": f"{champion[name]:.4f}" if champion and name in champion else "—",
        }
        for name, value in candidate.items()
    ]


def drift_section(drift: DriftRef) -> list[str]:
    """The report's drift part: the flag line, the table and plot when data was compared."""
    heading = "## Drift against the champion's training data"
    if drift.report is None or drift.plot is None:
        return [heading, f"**Drift:** {drift.summary}.", DRIFT_RULES]
    report = DriftReport.from_json(local_path(drift.report).read_text())
    flag = "**DRIFT**" if drift.drifted else "**No drift**"
    return [
        heading,
        f"{flag} {drift.summary}.",
        markdown_table(report.rows()),
        _image(drift.plot),
        DRIFT_RULES,
    ]


def publish_report(
    pipeline: str,
    data: Mapping[str, str],
    parameters: Mapping[str, object],
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    registration: Registration,
    plots: tuple[FileRef, ...],
    drift: DriftRef | None = None,
) -> str:
    """Report, metrics table and registry link under keys `<pipeline>-report`/`-metrics`/`-model`.

    With `drift`, the report also shows the incoming data against the champion's.

    Returns the report's markdown.
    """
    from lib.core.registry import model_version_url  # MLflow: imported when reporting

    rows = metrics_rows(candidate, champion)
    table = "\n".join(
        ["| metric | candidate | champion |", "|---|---|---|"]
        + [f"| {r['metric']} | {r['candidate']} | {r['champion']} |" for r in rows]
    )
    decision = "promoted to champion" if registration.promoted else "champion unchanged"
    model_page = model_version_url(
        load_settings().mlflow_ui_url, registration.name, registration.version
    )
    lines = [
        f"# {pipeline}: {registration.name} version {registration.version}",
        f"**Decision:** {decision}. {registration.reason[:1].upper()}{registration.reason[1:]}.",
        f"[{registration.name} version {registration.version} in MLflow]({model_page})",
        "## Data",
        *[f"- {key}: `{value}`" for key, value in data.items()],
        "## Parameters",
        *[f"- {key}: `{shown(value)}`" for key, value in parameters.items()],
        "## Metrics on the test data",
        table,
        "## Plots",
        *[_image(plot) for plot in plots],
        *(drift_section(drift) if drift is not None else []),
    ]
    markdown = "\n\n".join(lines)
    create_markdown_artifact(markdown=markdown, key=f"{pipeline}-report", description=decision)
    create_table_artifact(table=rows, key=f"{pipeline}-metrics", description="test metrics")
    create_link_artifact(
        link=model_page,
        link_text=f"{registration.name} version {registration.version}",
        key=f"{pipeline}-model",
        description="the registered model version in the MLflow UI (`trainflow ui`)",
    )
    return markdown
