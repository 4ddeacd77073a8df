"""Registry steps: find the champion, load a version, register a candidate behind the gate.

Only `register_candidate` is a task. The champion lookup runs in the flow itself: it must
read the registry afresh every run, so as a task it would be the one step of a warm re-run
that is never Cached, for no benefit in the UI.
"""

from __future__ import annotations

import json
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from lib.core.gate import champion_gate
from lib.core.model_spec import ModelSpec
from lib.core.settings import load_settings
from tasks.descriptors import Candidate, ChampionRef

if TYPE_CHECKING:
    from lib.core.registry import Registration

# What a registered model needs beside trainflow's own code to load anywhere MLflow does.
SERVING_PACKAGES = ("tensorflow", "keras", "pandas", "numpy")


def client_for(spec: ModelSpec) -> Any:
    """An MLflow client on the configured registry, with the experiment of `spec`."""
    from lib.core.registry import connect

    settings = load_settings()
    return connect(settings.tracking_uri, spec.pipeline, settings.home / "mlartifacts")


def check_registry(spec: ModelSpec) -> None:
    """Connect before training: a registry that is down fails the run in seconds, not after it.

    Call it from a flow run once its data is validated (so bad data never creates a registry).
    """
    client_for(spec)
    get_run_logger().info("registry reachable; %s versions will be registered there", spec.name)


def current_champion(spec: ModelSpec) -> ChampionRef | None:
    """The version holding the `champion` alias now; call it from a flow run."""
    from lib.core.registry import CANDIDATE_TAG, champion

    version = champion(client_for(spec), spec.name)
    if version is None:
        get_run_logger().info("%s has no champion yet", spec.name)
        return None
    get_run_logger().info("%s champion is version %s", spec.name, version.version)
    return ChampionRef(
        name=spec.name,
        version=str(version.version),
        candidate_id=version.tags.get(CANDIDATE_TAG, ""),
    )


def load_version(champion: ChampionRef) -> Any:
    """A registered version as the MLflow pyfunc every consumer loads."""
    import mlflow.pyfunc

    load_settings()  # the tracking URI was set by `client_for` in this flow run
    return mlflow.pyfunc.load_model(f"models:/{champion.name}/{champion.version}")


def _pip_requirements() -> list[str]:
    return [f"{name}=={installed_version(name)}" for name in SERVING_PACKAGES]


@task(task_run_name="register-{spec.name}", cache_policy=NO_CACHE)
def register_candidate(
    spec: ModelSpec, candidate: Candidate, champion: ChampionRef | None
) -> Registration:
    """Judge the candidate against the champion, register it, move `champion` if it won.

    A champion that is this very candidate means nothing changed: no new version.
    """
    from lib.core.registry import Candidate as Logged
    from lib.core.registry import register

    metrics = candidate.evaluation.metrics
    decision = champion_gate(metrics, champion.metrics if champion else None, spec.gate)
    parameters = candidate.parameters
    outcome = register(
        client_for(spec),
        spec.name,
        Logged(
            candidate_id=candidate.candidate_id,
            keras_path=Path(candidate.trained.model.path),
            python_model=spec.make_python_model(),
            params={"preset": parameters["preset"], "seed": parameters["seed"], **candidate.recipe},
            metrics=metrics,
            history=json.loads(Path(candidate.trained.history.path).read_text()),
            tags={
                **candidate.tags,
                **{tag: repr(metrics[key]) for tag, key in spec.version_tags.items()},
            },
            artifacts=[Path(plot.path) for plot in candidate.evaluation.plots],
            model_config={key: metrics[name] for key, name in spec.model_config.items()} or None,
        ),
        promote=decision.promote,
        reason=decision.reason,
        pip_requirements=_pip_requirements(),
    )
    get_run_logger().info("%s version %s: %s", spec.name, outcome.version, outcome.reason)
    return outcome
