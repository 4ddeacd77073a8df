"""Registry steps: find the champion, and register a candidate behind the champion gate.

Only `register_candidate` is a task. The champion lookup runs in the flow itself: it must
read the registry afresh every run, so as a task it would be the one step of a warm re-run
that is never Cached, for no benefit in the UI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.logging import get_run_logger

from lib.evaluation import GatePolicy, champion_gate
from lib.refs import FileRef
from lib.registry import CANDIDATE_TAG, Candidate, Registration, champion, connect, register
from lib.settings import load_settings
from tasks.descriptors import ChampionRef

EXPERIMENTS = {"energy-efficiency": "energy", "fashion-siamese": "siamese"}


def client_for(name: str) -> Any:
    """An MLflow client on the configured registry, with our experiment for `name`."""
    settings = load_settings()
    return connect(settings.tracking_uri, EXPERIMENTS[name], settings.home / "mlartifacts")


def current_champion(name: str) -> ChampionRef | None:
    """The version holding the `champion` alias now; call it from a flow run."""
    version = champion(client_for(name), name)
    if version is None:
        get_run_logger().info("%s has no champion yet", name)
        return None
    get_run_logger().info("%s champion is version %s", name, version.version)
    return ChampionRef(
        name=name, version=str(version.version), candidate_id=version.tags.get(CANDIDATE_TAG, "")
    )


@task(task_run_name="register-{name}")
def register_candidate(
    name: str,
    candidate_id: str,
    keras_model: FileRef,
    python_model: Any,
    params: dict[str, Any],
    metrics: dict[str, float],
    history_path: FileRef,
    tags: dict[str, str],
    plots: tuple[FileRef, ...],
    champion_ref: ChampionRef | None,
    gate: GatePolicy,
    signature: Any = None,
    input_example: Any = None,
    model_config: dict[str, Any] | None = None,
) -> Registration:
    """Judge the candidate against the champion, register it, move `champion` if it won.

    A champion that is this very candidate means nothing changed: no new version.
    """
    import json

    import keras
    import tensorflow

    champion_metrics = champion_ref.metrics if champion_ref is not None else None
    decision = champion_gate(metrics, champion_metrics, gate)
    history = json.loads(Path(history_path.path).read_text())
    requirements = [f"tensorflow=={tensorflow.__version__}", f"keras=={keras.__version__}"]
    outcome = register(
        client_for(name),
        name,
        Candidate(
            candidate_id=candidate_id,
            keras_path=Path(keras_model.path),
            python_model=python_model,
            params=params,
            metrics=metrics,
            history=history,
            tags=tags,
            artifacts=[Path(plot.path) for plot in plots],
            signature=signature,
            input_example=input_example,
            model_config=model_config,
        ),
        promote=decision.promote,
        reason=decision.reason,
        pip_requirements=requirements + ["pandas", "numpy"],
    )
    get_run_logger().info("%s version %s: %s", name, outcome.version, outcome.reason)
    return outcome
