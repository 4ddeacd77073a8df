"""The MLflow registry and the pyfunc wrapper, on a temporary SQLite registry.

Every MLflow-heavy step runs once in the module-scoped `registry` fixture (a fresh SQLite
database costs seconds of migrations); the tests read what it recorded.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.models import Model

from lib.core.champion import load_champion
from lib.core.registry import (
    CANDIDATE_TAG,
    CHAMPION_ALIAS,
    CODE_LOADER,
    DECISION_TAG,
    EXPERIMENT_KIND_TAG,
    HOME_TAG,
    HOST_TAG,
    MODEL_TRAINING_KIND,
    PID_TAG,
    REASON_TAG,
    Candidate,
    Registration,
    RegistryError,
    champion,
    connect,
    end_orphaned_runs,
    experiment_ids,
    experiment_runs_url,
    find_candidate,
    is_code_model,
    load_pyfunc,
    model_version_url,
    promotion_lock,
    register,
    registered_models_url,
)
from lib.core.training import save_model
from lib.energy.constants import FEATURES, PREDICTED
from lib.energy.model import build_energy_model, serving_model
from lib.energy.recipes import PRESETS
from lib.energy.spec import SPEC
from tests.fixtures.tampering import (
    LEGACY_PICKLE,
    hostile_pickle,
    register_legacy_champion,
    version_folder,
)
from tests.fixtures.unavailable import unavailable_server

REPO_ROOT = Path(__file__).resolve().parents[3]
NAME = "energy-efficiency-test"
EXPERIMENT = "test"
N_ROWS = 24
SEED = 5
TOLERANCE = 1e-5
PIP_REQUIREMENTS = ("tensorflow", "keras", "mlflow", "pandas")
CHAMPION_URI = f"models:/{NAME}@{CHAMPION_ALIAS}"
MLFLOW_GLOBALS = (
    "mlflow.tracking._tracking_service.utils._tracking_uri",
    "mlflow.tracking._model_registry.utils._registry_uri",
    "mlflow.tracking.fluent._active_experiment_id",
)
TRAINING_STARTED = 1_790_000_000.25  # seconds since the epoch: when "training" began
DESCRIPTION = "Predicts Y1 and Y2 from X1..X8."

# The fixture's models are saved untrained, so their optimizers have no slots to restore.
pytestmark = pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")


def _rows(n_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw ENB2012-like features (X6 coded 2..5, X8 0..5) and two loads."""
    rng = np.random.default_rng(seed)
    features = np.column_stack(
        [
            rng.choice([0.62, 0.74, 0.86, 0.98], n_rows),
            rng.choice([514.5, 661.5, 808.5], n_rows),
            rng.choice([245.0, 318.5, 416.5], n_rows),
            rng.choice([110.25, 147.0, 220.5], n_rows),
            rng.choice([3.5, 7.0], n_rows),
            rng.integers(2, 6, n_rows),
            rng.choice([0.0, 0.1, 0.25, 0.4], n_rows),
            rng.integers(0, 6, n_rows),
        ]
    ).astype("float32")
    loads = 4.0 * features[:, [4]] + 25.0 * features[:, [6]] + rng.normal(0, 1, (n_rows, 2))
    return features, loads.astype("float32")


def _candidate(candidate_id: str, keras_path: Path, rmse: float, plot: Path) -> Candidate:
    return Candidate(
        candidate_id=candidate_id,
        keras_path=keras_path,
        model_code=SPEC.model_code(),
        params={"preset": "default", "epochs": 3, "one_hot": ["X6", "X8"]},
        metrics={"rmse": rmse, "r2": 0.95},
        history={"loss": [3.0, 2.0, 1.5]},
        tags={"trainflow.data_sha256": "d" * 64},
        artifacts=[plot],
        started_at=TRAINING_STARTED,
        description=DESCRIPTION,
    )


@dataclass(frozen=True)
class Recorded:
    """What the fixture did to the registry, for the tests to check."""

    client: MlflowClient
    uri: str
    root: Path
    first: Registration  # candidate "a", promote=False on a fresh registry
    champion_after_first: Any
    second: Registration  # candidate "b", promote=True
    repeat: Registration  # candidate "b" again
    third: Registration  # candidate "c", promote=False
    frame: pd.DataFrame  # X1..X8 in raw units
    expected: np.ndarray  # the champion's (model b's) own Keras predictions, (n, 2)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        # connect() sets process-wide state (module globals, and env vars that subprocesses
        # inherit); record the originals so later test modules start clean.
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_EXPERIMENT_ID", "")
        for process_wide in MLFLOW_GLOBALS:
            patch.setattr(process_wide, None)
        patch.chdir(root)  # anything MLflow writes relative to the cwd stays in the temp dir
        client = connect(uri, EXPERIMENT, root / "artifacts")

        features, targets = _rows(N_ROWS, SEED)
        paths = {}
        models = {}
        for key, seed in (("a", SEED), ("b", SEED + 1)):
            keras.utils.set_random_seed(seed)
            models[key] = serving_model(
                PRESETS["default"], build_energy_model(PRESETS["default"], features, targets)
            )
            paths[key] = root / f"{key}.keras"
            save_model(models[key], paths[key])
        plot = root / "learning_curves.png"
        plot.write_bytes(b"\x89PNG\r\n\x1a\n")

        def run(candidate_id: str, key: str, promote: bool, reason: str) -> Registration:
            rmse = 2.0 if key == "a" else 1.0
            return register(
                client,
                NAME,
                _candidate(candidate_id, paths[key], rmse, plot),
                promote=promote,
                reason=reason,
                pip_requirements=PIP_REQUIREMENTS,
                home=root,
            )

        first = run("a" * 64, "a", promote=False, reason="candidate r2=0.5 fails the floor >= 0.9")
        champion_after_first = champion(client, NAME)
        second = run("b" * 64, "b", promote=True, reason="no champion yet; rmse=1")
        repeat = run("b" * 64, "b", promote=True, reason="should not be used")
        third = run("c" * 64, "a", promote=False, reason="candidate rmse=2 does not beat rmse=1")
        yield Recorded(
            client=client,
            uri=uri,
            root=root,
            first=first,
            champion_after_first=champion_after_first,
            second=second,
            repeat=repeat,
            third=third,
            frame=pd.DataFrame(features, columns=list(FEATURES)),
            expected=np.column_stack(models["b"].predict(features, verbose=0)),
        )


def test_versions_are_numbered_in_registration_order(registry: Recorded) -> None:
    assert (registry.first.version, registry.second.version, registry.third.version) == (
        "1",
        "2",
        "3",
    )
    assert all(
        r.newly_registered and r.name == NAME and r.run_id
        for r in (registry.first, registry.second, registry.third)
    )


def test_champion_alias_is_set_only_on_promotion(registry: Recorded) -> None:
    assert registry.champion_after_first is None  # version 1 was registered, not promoted
    assert not registry.first.promoted
    assert registry.second.promoted


def test_promote_false_leaves_the_champion_where_it_was(registry: Recorded) -> None:
    assert not registry.third.promoted
    current = champion(registry.client, NAME)
    assert current is not None and str(current.version) == registry.second.version
    aliases = registry.client.get_registered_model(NAME).aliases
    assert {alias: str(version) for alias, version in aliases.items()} == {
        CHAMPION_ALIAS: registry.second.version
    }


def test_version_tags_record_candidate_decision_reason_and_metrics(registry: Recorded) -> None:
    first = registry.client.get_model_version(NAME, registry.first.version).tags
    assert first[CANDIDATE_TAG] == "a" * 64
    assert first[DECISION_TAG] == "kept champion"
    assert first[REASON_TAG] == "candidate r2=0.5 fails the floor >= 0.9"
    assert first["metric.rmse"] == "2" and first["metric.r2"] == "0.95"
    assert first["trainflow.data_sha256"] == "d" * 64
    second = registry.client.get_model_version(NAME, registry.second.version).tags
    assert second[DECISION_TAG] == "promoted"
    assert second[REASON_TAG] == "no champion yet; rmse=1"
    assert second["metric.rmse"] == "1"


def test_the_run_holds_params_metrics_history_and_plots(registry: Recorded) -> None:
    run = registry.client.get_run(registry.second.run_id)
    assert run.data.params["preset"] == "default"  # strings as they are
    assert json.loads(run.data.params["one_hot"]) == ["X6", "X8"]  # the rest as JSON
    assert run.data.metrics["rmse"] == 1.0
    assert run.data.tags[CANDIDATE_TAG] == "b" * 64
    history = registry.client.get_metric_history(registry.second.run_id, "epoch_loss")
    assert [(m.step, m.value) for m in history] == [(0, 3.0), (1, 2.0), (2, 1.5)]
    plots = registry.client.list_artifacts(registry.second.run_id, "plots")
    assert [Path(item.path).name for item in plots] == ["learning_curves.png"]
    assert str(registry.root / "artifacts") in run.info.artifact_uri  # not ./mlruns


def test_the_run_spans_training_to_registration(registry: Recorded) -> None:
    run = registry.client.get_run(registry.second.run_id).info
    assert run.start_time == int(TRAINING_STARTED * 1000)  # not when registration began
    assert run.status == "FINISHED" and run.end_time > run.start_time


def test_the_logged_model_is_named_after_the_model(registry: Recorded) -> None:
    [output] = registry.client.get_run(registry.second.run_id).outputs.model_outputs
    assert registry.client.get_logged_model(output.model_id).name == NAME  # not "model"


def test_descriptions_say_what_the_model_does_and_what_was_decided(registry: Recorded) -> None:
    assert registry.client.get_registered_model(NAME).description == DESCRIPTION
    first = registry.client.get_model_version(NAME, registry.first.version)
    assert first.description == (
        f"{DESCRIPTION}\n\nNot promoted; the champion stays: candidate r2=0.5 fails the floor "
        ">= 0.9.\n\nTest metrics: rmse 2, r2 0.95."
    )
    second = registry.client.get_model_version(NAME, registry.second.version)
    assert "\n\nPromoted to champion: no champion yet; rmse=1." in second.description


def test_the_ui_shows_only_the_experiment_and_as_model_training(registry: Recorded) -> None:
    # The store's own empty "Default" (its artifacts relative to a working directory) is gone.
    [experiment] = registry.client.search_experiments()
    assert experiment.name == EXPERIMENT
    assert experiment.tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND
    assert experiment_ids(registry.uri, [EXPERIMENT], registry.root / "artifacts") == {
        EXPERIMENT: experiment.experiment_id
    }


def test_a_default_experiment_with_runs_is_kept_and_old_experiments_get_their_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for process_wide in MLFLOW_GLOBALS:  # `connect` sets them; the module's registry needs them
        monkeypatch.setattr(process_wide, None)
    uri = f"sqlite:///{tmp_path}/old.db"
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.setenv(variable, "")  # restored after the test, as `connect` changes them
    client = MlflowClient(tracking_uri=uri)
    client.create_run("0")  # someone logged into "Default"
    old = client.create_experiment("old", artifact_location=(tmp_path / "old").as_uri())

    connect(uri, "old", tmp_path / "artifacts")

    assert client.get_experiment("0").lifecycle_stage == "active"
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND


def test_ui_links_open_the_runs_in_the_training_view_and_the_models_list() -> None:
    assert (
        experiment_runs_url("http://127.0.0.1:5000/", "7")
        == "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    )
    assert registered_models_url("http://127.0.0.1:5000") == "http://127.0.0.1:5000/#/models"


def test_registering_the_same_candidate_again_adds_no_version(registry: Recorded) -> None:
    repeat = registry.repeat
    assert not repeat.newly_registered
    assert not repeat.promoted
    assert repeat.version == registry.second.version
    assert repeat.run_id == registry.second.run_id
    assert f"already version {registry.second.version}" in repeat.reason
    versions = registry.client.search_model_versions(f"name = '{NAME}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3]


@pytest.fixture(scope="module")
def served(registry: Recorded) -> Any:
    """The champion as a user loads it, by alias."""
    return mlflow.pyfunc.load_model(CHAMPION_URI)


def test_champion_predicts_y1_y2_from_raw_features(registry: Recorded, served: Any) -> None:
    frame = registry.frame.set_index(pd.RangeIndex(100, 100 + N_ROWS))
    predicted = served.predict(frame)
    assert list(predicted.columns) == [*PREDICTED, "in_domain", "domain_note"]
    assert list(predicted.index) == list(frame.index)  # rows stay aligned with the input
    loads = predicted[list(PREDICTED)].to_numpy()
    np.testing.assert_allclose(loads, registry.expected, rtol=0, atol=TOLERANCE)


def test_champion_accepts_extra_columns_in_any_order(registry: Recorded, served: Any) -> None:
    frame = registry.frame[list(reversed(FEATURES))].assign(building="A")
    loads = served.predict(frame)[list(PREDICTED)].to_numpy()
    np.testing.assert_allclose(loads, registry.expected, atol=TOLERANCE)


def test_champion_names_a_missing_column(registry: Recorded, served: Any) -> None:
    with pytest.raises(ValueError, match=r"missing X3\)"):
        served.predict(registry.frame.drop(columns=["X3"]))


CHILD = """
import sys
import numpy as np
import pandas as pd
import mlflow.pyfunc

model = mlflow.pyfunc.load_model(sys.argv[1])
predicted = model.predict(pd.read_parquet(sys.argv[2]))
loads = ["Y1_predicted", "Y2_predicted"]
assert list(predicted.columns) == [*loads, "in_domain", "domain_note"], list(predicted.columns)
np.save(sys.argv[3], predicted[loads].to_numpy())
"""


def test_champion_loads_in_a_fresh_process(registry: Recorded) -> None:
    features = registry.root / "features.parquet"
    registry.frame.to_parquet(features)
    output = registry.root / "fresh.npy"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry.uri,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    env.pop("MLFLOW_EXPERIMENT_ID", None)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, CHAMPION_URI, str(features), str(output)],
        capture_output=True,
        text=True,
        env=env,
        cwd=registry.root,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(output), registry.expected, rtol=0, atol=TOLERANCE)


def test_a_version_stores_its_code_file_and_no_pickle(registry: Recorded) -> None:
    folder = version_folder(registry.client, NAME, registry.second.version)
    code = SPEC.model_code()
    assert (folder / code.name).read_bytes() == code.read_bytes()  # a copy, made at registration
    assert not [p for p in folder.rglob("*") if p.suffix in {".pkl", ".pickle", ".cloudpickle"}]
    model = Model.load(str(folder))
    assert model.flavors["python_function"]["loader_module"] == CODE_LOADER
    assert is_code_model(model)


def test_a_pickle_planted_in_a_version_never_runs(registry: Recorded) -> None:
    control = registry.root / "control-marker"
    pickle.loads(hostile_pickle(control))  # the payload is live: unpickling it runs code
    assert control.exists()
    marker = registry.root / "planted-marker"
    folder = version_folder(registry.client, NAME, registry.third.version)
    (folder / LEGACY_PICKLE).write_bytes(hostile_pickle(marker))

    uri = f"models:/{NAME}/{registry.third.version}"
    for model in (load_pyfunc(uri), mlflow.pyfunc.load_model(uri)):
        assert list(model.predict(registry.frame).columns)[:2] == list(PREDICTED)
    assert not marker.exists()


def test_a_legacy_pickled_champion_is_refused_unread(registry: Recorded) -> None:
    marker = registry.root / "legacy-marker"
    legacy = "legacy-energy-test"
    version = register_legacy_champion(registry.client, legacy, registry.root, marker)

    with pytest.raises(ValueError, match=r"not a models-from-code version .* retrain"):
        load_champion(legacy)
    with pytest.raises(ValueError, match=r"registered before trainflow stopped storing pickles"):
        load_pyfunc(f"models:/{legacy}/{version}")
    assert not is_code_model(Model.load(f"models:/{legacy}/{version}"))
    assert not marker.exists()


def test_model_version_url_routes_to_the_version_page() -> None:
    assert (
        model_version_url("http://127.0.0.1:5000/", "a model/x", "3")
        == "http://127.0.0.1:5000/#/models/a%20model%2Fx/versions/3"
    )


def test_an_unavailable_registry_is_an_error_never_no_champion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with unavailable_server() as uri:
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        server_said = re.escape(uri) + r"/api/2\.0/mlflow/.*503 error responses"
        with pytest.raises(RegistryError, match=rf"champion of '{NAME}' .*{server_said}"):
            champion(client, NAME)
        with pytest.raises(RegistryError, match=rf"versions of '{NAME}' .*{server_said}"):
            find_candidate(client, NAME, "b" * 64)


def test_a_version_whose_decision_was_never_recorded_is_completed(
    registry: Recorded, tmp_path: Path
) -> None:
    # The state a kill between register_model and the tags leaves: the version exists with
    # its candidate tag only, and the alias never moved.
    plot = tmp_path / "plot.png"
    plot.write_bytes(b"\x89PNG\r\n\x1a\n")
    candidate = _candidate("e" * 64, registry.root / "b.keras", 0.5, plot)
    first = register(
        registry.client,
        NAME,
        candidate,
        promote=False,
        reason="kept",
        pip_requirements=(),
        home=registry.root,
    )
    registry.client.delete_model_version_tag(NAME, first.version, DECISION_TAG)
    registry.client.delete_model_version_tag(NAME, first.version, REASON_TAG)

    retried = register(
        registry.client,
        NAME,
        candidate,
        promote=True,
        reason="candidate beats champion",
        pip_requirements=(),
        home=registry.root,
    )

    assert (retried.version, retried.promoted, retried.newly_registered) == (
        first.version,
        True,
        True,
    )
    tags = registry.client.get_model_version(NAME, first.version).tags
    assert tags[DECISION_TAG] == "promoted" and tags[REASON_TAG] == "candidate beats champion"
    assert str(champion(registry.client, NAME).version) == first.version
    again = register(
        registry.client,
        NAME,
        candidate,
        promote=False,
        reason="x",
        pip_requirements=(),
        home=registry.root,
    )
    assert not again.newly_registered and "nothing changed" in again.reason
    # Leave the module's champion as the other tests expect it.
    registry.client.set_registered_model_alias(NAME, CHAMPION_ALIAS, registry.second.version)


def test_runs_left_running_by_a_dead_process_of_this_home_are_killed(registry: Recorded) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    experiment = registry.client.get_experiment_by_name(EXPERIMENT).experiment_id
    owner = {HOST_TAG: socket.gethostname(), HOME_TAG: str(registry.root)}
    orphan = registry.client.create_run(experiment, tags={**owner, PID_TAG: dead.stdout.strip()})
    alive = registry.client.create_run(experiment, tags={**owner, PID_TAG: str(os.getpid())})
    elsewhere = registry.client.create_run(
        experiment, tags={**owner, HOME_TAG: "/another/home", PID_TAG: dead.stdout.strip()}
    )

    ended = end_orphaned_runs(registry.client, EXPERIMENT, registry.root)

    assert ended == [orphan.info.run_id]
    status = {
        run.info.run_id: registry.client.get_run(run.info.run_id).info.status
        for run in (orphan, alive, elsewhere)
    }
    assert status == {
        orphan.info.run_id: "KILLED",
        alive.info.run_id: "RUNNING",
        elsewhere.info.run_id: "RUNNING",
    }
    for run in (alive, elsewhere):
        registry.client.set_terminated(run.info.run_id)


HOLDER = """
import sys, time
from filelock import FileLock
with FileLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(30)
"""


def test_a_promotion_lock_held_elsewhere_times_out_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "locks" / f"promote-{NAME}.lock"
    path.parent.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(RegistryError, match="another run held its promotion lock"),
            promotion_lock(tmp_path, NAME, timeout=1),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
    with promotion_lock(tmp_path, NAME, timeout=1):
        pass  # released by the kernel when its holder died
