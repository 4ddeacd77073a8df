"""The MLflow model registry: log a candidate, register a version, move `champion` on evidence.

Every candidate becomes a version tagged with its data hashes, parameters, metrics, code
version and the gate's decision; the alias moves last, so a failure anywhere before leaves
the previous champion where it was.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from lib.core.errors import ExpectedError

CHAMPION_ALIAS = "champion"
KERAS_ARTIFACT = "keras_model"
"""Name of the `.keras` file among a pyfunc model's artifacts."""
CANDIDATE_TAG = "trainflow.candidate_id"
DECISION_TAG = "trainflow.decision"
REASON_TAG = "trainflow.reason"
REACH_SECONDS = 5.0
"""How long a tracking server may take to accept a connection before it counts as down."""


class RegistryUnavailableError(ExpectedError, RuntimeError):
    """The tracking server at the configured URI does not accept connections."""


@dataclass(frozen=True)
class Registration:
    """Outcome of registering one candidate."""

    name: str
    version: str
    promoted: bool
    reason: str
    run_id: str
    newly_registered: bool


def connect(tracking_uri: str, experiment: str, artifact_root: Path) -> MlflowClient:
    """Point MLflow at `tracking_uri` and make sure `experiment` stores artifacts under our home.

    Without an explicit artifact location a SQLite-backed MLflow writes `./mlruns` into
    whatever directory the process happens to run in.

    Raises:
        RegistryUnavailableError: an http(s) tracking server does not accept connections.
    """
    check_reachable(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if client.get_experiment_by_name(experiment) is None:
        artifact_root.mkdir(parents=True, exist_ok=True)
        try:
            client.create_experiment(experiment, artifact_location=artifact_root.as_uri())
        except MlflowException:
            if client.get_experiment_by_name(experiment) is None:  # lost a race: fine
                raise
    mlflow.set_experiment(experiment)
    return client


def check_reachable(tracking_uri: str, timeout: float = REACH_SECONDS) -> None:
    """Fail at once when an http(s) tracking server is down; other URIs pass.

    MLflow retries a refused connection with backoff for minutes (4 min 10 s against a
    closed port on 127.0.0.1) before it reports anything. One request that may not wait
    longer than `timeout` to connect tells a server that is down from one that is slow; any
    answer at all, an error status included, counts as reachable.

    Raises:
        RegistryUnavailableError: no connection (refused, unknown host, connect timeout).
    """
    if not tracking_uri.startswith(("http://", "https://")):
        return
    url = httpx.URL(tracking_uri)
    shown = url.copy_with(username=None, password=None, query=None, fragment=None)
    try:
        httpx.get(url, timeout=httpx.Timeout(timeout))
    except (httpx.ConnectError, httpx.ConnectTimeout) as error:
        raise RegistryUnavailableError(
            f"Could not reach the MLflow registry at {shown} ({error}). Start the tracking "
            "server, or unset MLFLOW_TRACKING_URI to use the local registry"
        ) from None
    except httpx.HTTPError:
        pass  # it answered, or began to: MLflow's own calls say more


def champion(client: MlflowClient, name: str) -> ModelVersion | None:
    """The version holding the champion alias, or None on a fresh registry."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException:
        return None


def find_candidate(client: MlflowClient, name: str, candidate_id: str) -> ModelVersion | None:
    """An existing version registered from the same candidate (same model file), if any."""
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    for version in versions:
        if version.tags.get(CANDIDATE_TAG) == candidate_id:
            return version
    return None


@dataclass(frozen=True)
class Candidate:
    """Everything logged with one candidate model."""

    candidate_id: str
    keras_path: Path
    python_model: Any
    params: Mapping[str, Any]
    metrics: Mapping[str, float]
    history: Mapping[str, Sequence[float]]
    tags: Mapping[str, str]
    artifacts: Sequence[Path]
    signature: Any = None
    input_example: Any = None
    model_config: Mapping[str, Any] | None = None


def register(
    client: MlflowClient,
    name: str,
    candidate: Candidate,
    *,
    promote: bool,
    reason: str,
    pip_requirements: Sequence[str],
) -> Registration:
    """Log the candidate as a run, register it as a version and move the alias if `promote`.

    Idempotent on `candidate.candidate_id`: the same model file is registered once, so a
    retried task or an unchanged re-run adds no version.
    """
    existing = find_candidate(client, name, candidate.candidate_id)
    if existing is not None:
        return Registration(
            name,
            str(existing.version),
            promoted=False,
            reason=f"nothing changed: this model is already version {existing.version}",
            run_id=existing.run_id or "",
            newly_registered=False,
        )
    with mlflow.start_run(run_name=f"{name}-{candidate.candidate_id[:8]}") as run:
        mlflow.log_params({key: _param(value) for key, value in candidate.params.items()})
        mlflow.log_metrics(dict(candidate.metrics))
        for key, values in candidate.history.items():
            for step, value in enumerate(values):
                mlflow.log_metric(f"epoch_{key}", value, step=step)
        mlflow.set_tags({**candidate.tags, CANDIDATE_TAG: candidate.candidate_id})
        for artifact in candidate.artifacts:
            mlflow.log_artifact(str(artifact), artifact_path="plots")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=candidate.python_model,
            artifacts={KERAS_ARTIFACT: str(candidate.keras_path)},
            signature=candidate.signature,
            input_example=candidate.input_example,
            model_config=dict(candidate.model_config) if candidate.model_config else None,
            pip_requirements=list(pip_requirements),
        )
        # The candidate tag is set with the version itself, so a retry after a crash here
        # finds this version instead of registering a second one.
        model_version = mlflow.register_model(
            info.model_uri, name, tags={CANDIDATE_TAG: candidate.candidate_id}
        )
    version = str(model_version.version)
    version_tags: dict[str, str] = {
        CANDIDATE_TAG: candidate.candidate_id,
        DECISION_TAG: "promoted" if promote else "kept champion",
        REASON_TAG: reason,
        **{f"metric.{k}": f"{v:.6g}" for k, v in candidate.metrics.items()},
        **candidate.tags,
    }
    for tag, text in version_tags.items():
        client.set_model_version_tag(name, version, tag, text)
    if promote:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
    return Registration(name, version, promote, reason, run.info.run_id, newly_registered=True)


def model_version_url(ui_url: str, name: str, version: str) -> str:
    """The MLflow UI page of one model version (the UI routes after `#`)."""
    return f"{ui_url.rstrip('/')}/#/models/{quote(name, safe='')}/versions/{version}"


def _param(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
