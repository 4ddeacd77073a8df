"""The end both pipelines share: judge the candidate against the champion, register, report.

The champion lookup and the report run in the flow, not as tasks (see `tasks.registry` and
`tasks.report`), so a re-run with nothing changed shows every task but `register` Cached and
still leaves a report that says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from lib.evaluation import GatePolicy
from tasks.descriptors import ChampionRef, Evaluation, TrainedModel
from tasks.registry import current_champion, register_candidate
from tasks.report import publish_report


def register_and_report(
    pipeline: str,
    model_name: str,
    trained: TrainedModel,
    evaluation: Evaluation,
    evaluate_champion: Callable[[ChampionRef], ChampionRef],
    gate: GatePolicy,
    python_model: Any,
    parameters: BaseModel,
    recipe: BaseModel,
    tags: Mapping[str, str],
    data: Mapping[str, str],
    model_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Register the candidate behind `gate`, publish the run's artifacts, return its summary.

    Args:
        evaluate_champion: scores another model on the candidate's own test data (a cached
            task bound to that data), so the gate compares like with like.
        parameters: the flow's parameters, as the report shows them; their `preset` and
            `seed` are also MLflow params of the run.
        recipe: the recipe trained, the rest of the run's MLflow params.
        data: what the report says about the data (source, hashes, rows).
    """
    champion = current_champion(model_name)
    if champion is not None and champion.candidate_id == trained.model.sha256:
        # The champion is this very model, already scored on this very test data.
        champion = champion.model_copy(update={"metrics": evaluation.metrics})
    elif champion is not None:
        champion = evaluate_champion(champion)
    registration = register_candidate(
        name=model_name,
        candidate_id=trained.model.sha256,
        keras_model=trained.model,
        python_model=python_model,
        params={**parameters.model_dump(include={"preset", "seed"}), **recipe.model_dump()},
        metrics=evaluation.metrics,
        history_path=trained.history,
        tags=dict(tags),
        plots=evaluation.plots,
        champion_ref=champion,
        gate=gate,
        model_config=model_config,
    )
    champion_metrics = champion.metrics if champion is not None else None
    publish_report(
        pipeline,
        data=data,
        parameters=parameters.model_dump(),
        candidate=evaluation.metrics,
        champion=champion_metrics,
        registration=registration,
        plots=evaluation.plots,
    )
    return {
        "pipeline": pipeline,
        "metrics": evaluation.metrics,
        "champion_metrics": champion_metrics,
        "model": model_name,
        "version": registration.version,
        "promoted": registration.promoted,
        "newly_registered": registration.newly_registered,
        "reason": registration.reason,
        "epochs": trained.epochs_run,
        "train_seconds": trained.seconds,
    }
