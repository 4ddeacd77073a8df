"""The end both pipelines share: judge the candidate against the champion, register, report.

The champion lookup and the report run in the flow, not as tasks (see `tasks.registry` and
`tasks.report`), so a re-run with nothing changed shows every task but `register` Cached and
still leaves a report that says so.
"""

from __future__ import annotations

from lib.core.model_spec import ModelSpec
from lib.core.settings import load_settings
from tasks.descriptors import Candidate, ChampionRef, DriftRef, RunSummary
from tasks.registry import current_champion, register_candidate, scored_if_same
from tasks.report import publish_report


def rival(spec: ModelSpec, candidate: Candidate) -> ChampionRef | None:
    """The champion to beat; its `metrics` are already known when it is this very model.

    A champion returned with `metrics` None must still be scored on the candidate's test data
    (the flow's own evaluate-champion task), so the gate compares like with like.
    """
    return scored_if_same(current_champion(spec), candidate)


def register_and_report(
    spec: ModelSpec, candidate: Candidate, champion: ChampionRef | None, drift: DriftRef
) -> RunSummary:
    """Register the candidate behind the gate of `spec`, publish the run's artifacts.

    `drift` (the incoming data against the champion's) is reported; it decides nothing.
    """
    from lib.core.registry import model_version_url

    registration = register_candidate(spec, candidate, champion)
    champion_metrics = champion.metrics if champion is not None else None
    publish_report(
        spec.pipeline,
        data=candidate.data,
        parameters={**candidate.parameters, "epochs trained": candidate.trained.epochs_run},
        candidate=candidate.evaluation.metrics,
        champion=champion_metrics,
        registration=registration,
        plots=candidate.evaluation.plots,
        drift=drift,
    )
    return RunSummary(
        pipeline=spec.pipeline,
        model=spec.name,
        version=registration.version,
        version_url=model_version_url(
            load_settings().mlflow_ui_url, registration.name, registration.version
        ),
        promoted=registration.promoted,
        newly_registered=registration.newly_registered,
        reason=registration.reason,
        metrics=candidate.evaluation.metrics,
        champion_metrics=champion_metrics,
        champion_version=champion.version if champion is not None else None,
        epochs=candidate.trained.epochs_run,
        train_seconds=candidate.trained.seconds,
        drift=drift.summary,
    )
