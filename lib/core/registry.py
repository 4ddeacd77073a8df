"""The MLflow model registry: log a candidate, register a version, move `champion` on evidence.

Every candidate becomes a version tagged with its data hashes, parameters, metrics, code
version and the gate's decision; the alias moves last, so a failure anywhere before leaves
the previous champion where it was.

Versions are MLflow "models from code": the wrapper's code is a `.py` file copied into the
version and the network a `.keras` file loaded with `safe_mode=True`; no pickle is written,
and `load_pyfunc` refuses to load a version that would unpickle one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.models.model import MODEL_CODE_PATH

CHAMPION_ALIAS = "champion"
KERAS_ARTIFACT = "keras_model"
"""Name of the `.keras` file among a pyfunc model's artifacts."""
CODE_LOADER = "mlflow.pyfunc.loaders.code_model"
"""The pyfunc loader of a models-from-code version: it runs the logged file, unpickles nothing."""
PYFUNC_FLAVOR = "python_function"
CANDIDATE_TAG = "trainflow.candidate_id"
DECISION_TAG = "trainflow.decision"
REASON_TAG = "trainflow.reason"


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
    """
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
    """Everything logged with one candidate model.

    `model_code` is the models-from-code file (it calls `mlflow.models.set_model`); MLflow
    copies it into the version, so the version keeps the code it was registered with.
    """

    candidate_id: str
    keras_path: Path
    model_code: Path
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
            python_model=str(candidate.model_code),  # a path: models from code, no pickle
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


def is_code_model(model: Model) -> bool:
    """Whether `model` (its MLmodel file) loads by running its code file, never a pickle.

    Pyfunc runs the `loader_module` its MLmodel names; only the models-from-code loader reads
    no `python_model.pkl`. `code_paths` (directories put on `sys.path` at load) are refused too:
    trainflow never logs any.
    """
    flavor = model.flavors.get(PYFUNC_FLAVOR) or {}
    return (
        flavor.get("loader_module") == CODE_LOADER
        and bool(flavor.get(MODEL_CODE_PATH))
        and not flavor.get("code")
    )


def load_pyfunc(model_uri: str, model_config: Mapping[str, Any] | None = None) -> Any:
    """The model at `model_uri` as a pyfunc, if it is a models-from-code version.

    Its MLmodel is checked in the folder MLflow then loads from (a download of a remote store;
    the artifact folder itself for a local one, which MLflow does not copy). A version
    registered before trainflow logged models from code holds a pickled wrapper: it is
    refused with a `ValueError`, not unpickled. The check is against old versions, not a
    writer racing it: whoever can write the artifacts can edit the code file anyway.
    """
    import mlflow.artifacts
    import mlflow.pyfunc

    local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri)
    if not is_code_model(Model.load(local)):
        raise ValueError(
            f"{model_uri} is not a models-from-code version (registered before trainflow "
            f"stopped storing pickles); it is not loaded: retrain (`trainflow run`) to register "
            f"one that is"
        )
    config = dict(model_config) if model_config is not None else None
    return mlflow.pyfunc.load_model(local, model_config=config)


def model_version_url(ui_url: str, name: str, version: str) -> str:
    """The MLflow UI page of one model version (the UI routes after `#`)."""
    return f"{ui_url.rstrip('/')}/#/models/{quote(name, safe='')}/versions/{version}"


def _param(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
