"""The MLflow model registry: log a candidate, register a version, move `champion` on evidence.

Every candidate becomes a version tagged with its data hashes, parameters, metrics, code
version and the gate's decision; the alias moves last, so a failure anywhere before leaves
the previous champion where it was.

Versions are MLflow "models from code": the wrapper's code is a `.py` file copied into the
version and the network a `.keras` file loaded with `safe_mode=True`; no pickle is written,
and `load_pyfunc` refuses to load a version that would unpickle one.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import mlflow
from filelock import FileLock, Timeout
from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.entities.model_registry import ModelVersion
from mlflow.environment_variables import MLFLOW_EXPERIMENT_ID
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.models.model import MODEL_CODE_PATH
from mlflow.protos.databricks_pb2 import ErrorCode
from sqlalchemy.exc import SQLAlchemyError

from lib.core.errors import ExpectedError
from lib.core.faults import fault_point

CHAMPION_ALIAS = "champion"
KERAS_ARTIFACT = "keras_model"
"""Name of the `.keras` file among a pyfunc model's artifacts."""
REFERENCE_ARTIFACT = "reference"
"""Name of the file of what the model learned from (e.g. its training rows) among a pyfunc
model's artifacts: serving checks inputs against it, drift checks compare new data with it."""
CODE_LOADER = "mlflow.pyfunc.loaders.code_model"
"""The pyfunc loader of a models-from-code version: it runs the logged file, unpickles nothing."""
PYFUNC_FLAVOR = "python_function"
CANDIDATE_TAG = "trainflow.candidate_id"
DECISION_TAG = "trainflow.decision"
REASON_TAG = "trainflow.reason"
HOST_TAG = "trainflow.host"
PID_TAG = "trainflow.pid"
HOME_TAG = "trainflow.home"
"""Run tags naming the process that registers: how a run it left RUNNING is recognised."""
FLOW_RUN_ID_TAG = "trainflow.prefect_flow_run_id"
FLOW_RUN_URL_TAG = "trainflow.prefect_flow_run_url"
"""Run and version tags: the Prefect flow run that trained the candidate, the way back to it."""
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
"""The experiment kind MLflow 3's UI opens on its model-training views (runs, metrics), not
on the GenAI ones (traces) it shows an experiment of no kind."""
DEFAULT_EXPERIMENT = "Default"
PROMOTION_LOCK_SECONDS = 1800.0
"""Longest wait for another run's promotion (it scores a champion and logs a model)."""
SQLITE_PREFIX = "sqlite:///"
SERVER_SCHEMES = ("http://", "https://")
"""Tracking URIs of an MLflow tracking server, as opposed to a store this process opens."""
RESOURCE_DOES_NOT_EXIST = ErrorCode.Name(ErrorCode.RESOURCE_DOES_NOT_EXIST)
REGISTRY_FAILURES = (MlflowException, SQLAlchemyError, OSError)
"""What a registry that cannot answer raises: MLflow's errors, a locked or broken database."""
REACH_SECONDS = 5.0
"""How long a tracking server may take to accept a connection before it counts as down."""


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
    """Point MLflow at `tracking_uri` and make sure `experiment` exists, made as trainflow does.

    A local store's experiment keeps its artifacts under `artifact_root`: without an explicit
    location a SQLite-backed MLflow writes `./mlruns` into whatever directory the process
    happens to run in. A tracking server's experiment takes the server's default instead
    (`mlflow-artifacts:`, proxied to its `--artifacts-destination`): a path on this
    machine's disk would mean nothing to the other machines that load its versions.

    Raises:
        RegistryError: the registry cannot be opened or does not answer.
        RegistryUnavailableError: an http(s) tracking server does not accept connections.
    """
    try:
        return _connect(tracking_uri, experiment, artifact_root)
    except REGISTRY_FAILURES as error:
        raise _registry_error(f"open experiment '{experiment}'", error, tracking_uri) from error


@contextlib.contextmanager
def _creating_database(tracking_uri: str) -> Iterator[None]:
    """One process at a time may open a SQLite registry that may not have its tables yet.

    Two processes that find the file missing both run MLflow's migrations, and one fails
    with "table ... already exists". A lock beside the file makes the second wait and then
    find the tables. Other stores create their schema once, on the server.
    """
    if not tracking_uri.startswith(SQLITE_PREFIX):
        yield
        return
    database = Path(tracking_uri.removeprefix(SQLITE_PREFIX))
    database.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{database}.lock", timeout=PROMOTION_LOCK_SECONDS):
        yield


def open_client(tracking_uri: str) -> MlflowClient:
    """A client of the registry at `tracking_uri`, made the process's registry too.

    Raises:
        RegistryError: the registry cannot be opened (a locked or broken database file).
    """
    check_reachable(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    except REGISTRY_FAILURES as error:
        raise _registry_error("open the registry", error, tracking_uri) from error


def _connect(tracking_uri: str, experiment: str, artifact_root: Path) -> MlflowClient:
    with _creating_database(tracking_uri):
        client = open_client(tracking_uri)
        found = client.get_experiment_by_name(experiment)  # creates a new database's tables
        if tracking_uri.startswith(SQLITE_PREFIX):
            _retire_default_experiment(client)
    if found is None:
        location = None
        if not tracking_uri.startswith(SERVER_SCHEMES):
            artifact_root.mkdir(parents=True, exist_ok=True)
            location = artifact_root.as_uri()
        try:
            client.create_experiment(
                experiment,
                artifact_location=location,
                tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND},
            )
        except MlflowException:
            if client.get_experiment_by_name(experiment) is None:  # lost a race: fine
                raise
    elif EXPERIMENT_KIND_TAG not in found.tags:  # made before trainflow set the kind
        client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    mlflow.set_experiment(experiment)
    return client


def _retire_default_experiment(client: MlflowClient) -> None:
    """Delete the empty "Default" experiment a new SQLite store creates for itself.

    trainflow logs into one experiment per pipeline; "Default" would only sit first in the
    UI, empty, with an artifact location relative to whichever directory created the store.
    One that holds runs (someone logged there) is kept.
    """
    default = client.get_experiment_by_name(DEFAULT_EXPERIMENT)
    if default is None or default.lifecycle_stage != "active":
        return
    if not client.search_runs([default.experiment_id], max_results=1, run_view_type=ViewType.ALL):
        client.delete_experiment(default.experiment_id)


def experiment_ids(
    tracking_uri: str, experiments: Sequence[str], artifact_root: Path
) -> dict[str, str]:
    """Each experiment's id, made as `connect` makes it when missing: what UI links point to.

    Raises:
        RegistryError: the registry cannot be opened or does not answer.
    """
    ids = {}
    for experiment in experiments:
        client = connect(tracking_uri, experiment, artifact_root)
        try:
            found = client.get_experiment_by_name(experiment)
        except REGISTRY_FAILURES as error:
            raise _registry_error(f"read experiment '{experiment}'", error, tracking_uri) from error
        if found is None:  # deleted by someone else since `connect` made it
            raise RegistryError(f"Could not find experiment '{experiment}' at {tracking_uri}")
        ids[experiment] = found.experiment_id
    return ids


class RegistryError(ExpectedError, RuntimeError):
    """The registry could not be read or written; nothing was decided on a guess."""


class RegistryUnavailableError(RegistryError):
    """The tracking server at the configured URI does not accept connections."""


def check_reachable(tracking_uri: str, timeout: float = REACH_SECONDS) -> None:
    """Fail at once when an http(s) tracking server is down; other URIs pass.

    MLflow retries a refused connection with backoff for minutes (4 min 10 s against a
    closed port on 127.0.0.1) before it reports anything. One request that may not wait
    longer than `timeout` to connect tells a server that is down from one that is slow; any
    answer at all, an error status included, counts as reachable.

    Raises:
        RegistryUnavailableError: no connection (refused, unknown host, connect timeout).
    """
    if not tracking_uri.startswith(SERVER_SCHEMES):
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
    """The version holding the champion alias; None only when the registry says there is none.

    "There is none" means the model does not exist yet or has no such alias. Any other
    answer (a locked database, a server's 503) raises `RegistryError`: read as "no champion",
    it would let a candidate replace a better champion on the floors alone.
    """
    try:
        model = client.get_registered_model(name)
    except REGISTRY_FAILURES as error:
        if getattr(error, "error_code", None) == RESOURCE_DOES_NOT_EXIST:
            return None
        raise _registry_error(f"read the champion of '{name}'", error) from error
    version = (model.aliases or {}).get(CHAMPION_ALIAS)
    if version is None:
        return None
    try:
        return client.get_model_version(name, str(version))
    except REGISTRY_FAILURES as error:
        raise _registry_error(f"read version {version} of '{name}'", error) from error


def find_candidate(client: MlflowClient, name: str, candidate_id: str) -> ModelVersion | None:
    """An existing version registered from the same candidate (same model file), if any.

    Raises:
        RegistryError: the registry did not answer; guessing "none" could register twice.
    """
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except REGISTRY_FAILURES as error:
        raise _registry_error(f"look up the versions of '{name}'", error) from error
    for version in versions:
        if version.tags.get(CANDIDATE_TAG) == candidate_id:
            return version
    return None


@contextlib.contextmanager
def promotion_lock(
    home: Path, name: str, timeout: float = PROMOTION_LOCK_SECONDS
) -> Iterator[None]:
    """Hold the promotion lock of model `name` for every process that shares `home`.

    Reading the champion, deciding and moving the alias must happen as one step: two runs
    that each read the champion, then each set the alias, can leave the worse model as
    champion. The lock is a file lock (released by the kernel if its holder dies); across
    machines the Prefect server adds its own (`tasks.registry`).

    Raises:
        RegistryError: another process held the lock for `timeout` seconds.
    """
    path = home / "locks" / f"promote-{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(path, timeout=timeout):
            yield
    except Timeout as error:
        raise RegistryError(
            f"Could not promote '{name}': another run held its promotion lock ({path}) for "
            f"{timeout:g} s"
        ) from error


def _registry_error(action: str, error: Exception, uri: str | None = None) -> RegistryError:
    """One line: what could not be done, where, and the first line of what the store said."""
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    first_line = text.strip().splitlines()[0]
    uri = uri or mlflow.get_registry_uri()
    return RegistryError(
        f"Could not {action} in the registry at {mlflow.get_tracking_uri()}: {first_line}"
    )


@dataclass(frozen=True)
class Candidate:
    """Everything logged with one candidate model.

    `model_code` is the models-from-code file (it calls `mlflow.models.set_model`); MLflow
    copies it into the version, so the version keeps the code it was registered with.
    `started_at` (seconds since the epoch) is when training began: the run spans train,
    evaluate and register, not registration alone. `description` says what the model
    predicts from what; it describes the registered model and opens each version's.
    `signature` and `input_example` go into its MLmodel: MLflow's scoring server checks
    requests against the signature, and MLflow serves the example once at logging to check it.
    """

    candidate_id: str
    keras_path: Path
    model_code: Path
    params: Mapping[str, Any]
    metrics: Mapping[str, float]
    history: Mapping[str, Sequence[float]]
    tags: Mapping[str, str]
    artifacts: Sequence[Path]
    model_config: Mapping[str, Any] | None = None
    reference: Path | None = None
    started_at: float | None = None
    description: str = ""
    signature: Any = None
    input_example: Any = None


def register(
    client: MlflowClient,
    name: str,
    candidate: Candidate,
    *,
    promote: bool,
    reason: str,
    pip_requirements: Sequence[str],
    home: Path,
) -> Registration:
    """Log the candidate as a run, register it as a version and move the alias if `promote`.

    Idempotent on `candidate.candidate_id`: the same model file is registered once, so a
    retried task or an unchanged re-run adds no version. Resumable: a version whose decision
    was never recorded (the process died between registering it and tagging it) is completed
    with this decision, tags and alias, and not registered again. Call it under the model's
    promotion lock, with `promote` decided against the champion read under that lock.
    """
    existing = find_candidate(client, name, candidate.candidate_id)
    if existing is not None and existing.tags.get(DECISION_TAG):
        return Registration(
            name,
            str(existing.version),
            promoted=False,
            reason=f"nothing changed: this model is already version {existing.version}",
            run_id=existing.run_id or "",
            newly_registered=False,
        )
    if existing is None:
        version, run_id = _log_and_register(name, candidate, pip_requirements, home)
    else:
        version, run_id = str(existing.version), existing.run_id or ""
    fault_point("registered")
    _record_decision(client, name, version, candidate, promote, reason)
    return Registration(name, version, promote, reason, run_id, newly_registered=True)


def _log_and_register(
    name: str, candidate: Candidate, pip_requirements: Sequence[str], home: Path
) -> tuple[str, str]:
    """Log the candidate's run and model, register a version; return version and run id."""
    owner = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), HOME_TAG: str(home)}
    run_name = f"{name}-{candidate.candidate_id[:8]}"
    with mlflow.start_run(run_id=_begin_run(run_name, owner, candidate.started_at)) as run:
        mlflow.log_params({key: _param(value) for key, value in candidate.params.items()})
        mlflow.log_metrics(dict(candidate.metrics))
        for key, values in candidate.history.items():
            for step, value in enumerate(values):
                mlflow.log_metric(f"epoch_{key}", value, step=step)
        mlflow.set_tags({**candidate.tags, CANDIDATE_TAG: candidate.candidate_id})
        for artifact in candidate.artifacts:
            mlflow.log_artifact(str(artifact), artifact_path="plots")
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(candidate.model_code),  # a path: models from code, no pickle
            artifacts=_model_artifacts(candidate),
            model_config=dict(candidate.model_config) if candidate.model_config else None,
            pip_requirements=list(pip_requirements),
            signature=candidate.signature,
            input_example=candidate.input_example,
        )
        # The candidate tag is set with the version itself, so a retry after a crash here
        # finds this version instead of registering a second one.
        model_version = mlflow.register_model(
            info.model_uri, name, tags={CANDIDATE_TAG: candidate.candidate_id}
        )
    return str(model_version.version), run.info.run_id


def _model_artifacts(candidate: Candidate) -> dict[str, str]:
    """The files a version carries beside its code: the network and, if any, its reference."""
    artifacts = {KERAS_ARTIFACT: str(candidate.keras_path)}
    if candidate.reference is not None:
        artifacts[REFERENCE_ARTIFACT] = str(candidate.reference)
    return artifacts


def _begin_run(run_name: str, tags: Mapping[str, str], started_at: float | None) -> str:
    """Create a run of the active experiment that began at `started_at`; return its id.

    `mlflow.start_run` stamps the moment it is called, so it cannot begin a run in the past.
    """
    start_time = None if started_at is None else int(started_at * 1000)
    experiment_id = MLFLOW_EXPERIMENT_ID.get()  # set by `mlflow.set_experiment` in `connect`
    run = MlflowClient().create_run(
        experiment_id, start_time=start_time, tags=dict(tags), run_name=run_name
    )
    return run.info.run_id


def _version_description(candidate: Candidate, promote: bool, reason: str) -> str:
    """What the version is, what was decided and why: the first thing its page shows."""
    decision = "Promoted to champion" if promote else "Not promoted; the champion stays"
    metrics = ", ".join(f"{key} {value:.4g}" for key, value in candidate.metrics.items())
    return "\n\n".join(
        part
        for part in (candidate.description, f"{decision}: {reason}.", f"Test metrics: {metrics}.")
        if part
    )


def _record_decision(
    client: MlflowClient,
    name: str,
    version: str,
    candidate: Candidate,
    promote: bool,
    reason: str,
) -> None:
    """Tag the version, move the alias if promoted, and mark the decision recorded, last.

    `DECISION_TAG` goes last: its presence is what tells a retry the version is complete.
    """
    version_tags: dict[str, str] = {
        CANDIDATE_TAG: candidate.candidate_id,
        REASON_TAG: reason,
        **{f"metric.{k}": f"{v:.6g}" for k, v in candidate.metrics.items()},
        **candidate.tags,
    }
    for tag, text in version_tags.items():
        client.set_model_version_tag(name, version, tag, text)
    if candidate.description:
        client.update_registered_model(name, description=candidate.description)
    client.update_model_version(
        name, version, description=_version_description(candidate, promote, reason)
    )
    if promote:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
    client.set_model_version_tag(
        name, version, DECISION_TAG, "promoted" if promote else "kept champion"
    )


def end_orphaned_runs(client: MlflowClient, experiment: str, home: Path) -> list[str]:
    """Mark KILLED the RUNNING runs of `experiment` that a dead process of this home left.

    A run is orphaned when it was started on this host, for this home, by a process that no
    longer exists (killed while registering). Runs of live processes, other hosts or other
    homes are left alone. Returns the ids of the runs ended.
    """
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    try:
        running = client.search_runs(
            [found.experiment_id], filter_string="attributes.status = 'RUNNING'"
        )
    except REGISTRY_FAILURES as error:
        raise _registry_error(f"look up the running runs of '{experiment}'", error) from error
    ended = []
    for run in running:
        tags = run.data.tags
        mine = tags.get(HOST_TAG) == socket.gethostname() and tags.get(HOME_TAG) == str(home)
        if mine and not _alive(int(tags.get(PID_TAG, "0") or 0)):
            client.set_terminated(run.info.run_id, status="KILLED")
            ended.append(run.info.run_id)
    return ended


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


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


def load_pyfunc(
    model_uri: str, model_config: Mapping[str, Any] | None = None, scratch: Path | None = None
) -> Any:
    """The model at `model_uri` as a pyfunc, if it is a models-from-code version.

    Its MLmodel is checked in the folder MLflow then loads from, so what was checked is what
    runs. A version registered before trainflow logged models from code holds a pickled
    wrapper: it is refused with a `ValueError`, not unpickled. The check is against old
    versions, not a writer racing it: whoever can write the artifacts can edit the code file
    anyway. With `scratch`, the download goes to a folder under it that is removed once the
    model is in memory (MLflow's own default, a system temp folder, is never removed).
    """
    import mlflow.pyfunc

    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=scratch) if scratch else contextlib.nullcontext()
    ) as folder:
        local = download_code_model(model_uri, folder)
        config = dict(model_config) if model_config is not None else None
        # suppress_warnings skips MLflow's check of the version's pip requirements against
        # this environment, which reads the file list of every installed distribution
        # (1-2 s of each `predict`); a models-from-code version runs this environment's
        # `lib` anyway.
        return mlflow.pyfunc.load_model(str(local), model_config=config, suppress_warnings=True)


def download_code_model(model_uri: str, folder: str | Path | None) -> Path:
    """Download the model at `model_uri` into `folder` if it is a models-from-code version.

    Raises:
        ValueError: the version holds a pickled wrapper (registered before models from
            code); it is refused, and nothing in it runs.
    """
    import mlflow.artifacts

    local = mlflow.artifacts.download_artifacts(
        artifact_uri=model_uri, dst_path=None if folder is None else str(folder)
    )
    if not is_code_model(Model.load(local)):
        raise ValueError(
            f"{model_uri} is not a models-from-code version (registered before trainflow "
            f"stopped storing pickles); it is not loaded: retrain (`trainflow run`) to "
            f"register one that is"
        )
    return Path(local)


def download_reference(model_uri: str, folder: Path) -> Path | None:
    """The reference file (`REFERENCE_ARTIFACT`) of the model at `model_uri`, into `folder`.

    Only the model's MLmodel file and that one artifact are downloaded, not the network.
    None when the version carries none (registered before references were logged).
    """
    import mlflow.artifacts

    folder.mkdir(parents=True, exist_ok=True)
    base = model_uri.rstrip("/")
    mlmodel = mlflow.artifacts.download_artifacts(f"{base}/MLmodel", dst_path=str(folder))
    flavor = Model.load(mlmodel).flavors.get(PYFUNC_FLAVOR) or {}
    listed = (flavor.get("artifacts") or {}).get(REFERENCE_ARTIFACT)
    if not listed:
        return None
    return Path(
        mlflow.artifacts.download_artifacts(f"{base}/{listed['path']}", dst_path=str(folder))
    )


def model_version_url(ui_url: str, name: str, version: str) -> str:
    """The MLflow UI page of one model version (the UI routes after `#`)."""
    return f"{ui_url.rstrip('/')}/#/models/{quote(name, safe='')}/versions/{version}"


def experiment_runs_url(ui_url: str, experiment_id: str) -> str:
    """The MLflow UI's table of an experiment's runs, in its model-training view.

    MLflow 3's UI opens on its GenAI views unless told otherwise: the `workflowType` query
    switches it to "machine learning" (runs, metrics, models), whatever it showed last.
    """
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def registered_models_url(ui_url: str) -> str:
    """The MLflow UI's list of registered models."""
    return f"{ui_url.rstrip('/')}/#/models"


def _param(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
