"""What a user reads: `--help`, and the registry a run leaves for the MLflow UI.

Both run the real CLI in a fresh process; the run trains 2 epochs on 320 synthetic rows
(15-40 s, most of it the ephemeral Prefect API starting).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mlflow import MlflowClient

from flows.cli import DESCRIPTION
from lib.core.registry import (
    EXPERIMENT_KIND_TAG,
    FLOW_RUN_ID_TAG,
    FLOW_RUN_URL_TAG,
    MODEL_TRAINING_KIND,
    REASON_TAG,
)
from lib.energy.constants import MODEL_NAME, PIPELINE
from lib.energy.spec import SPEC
from tests.fixtures.cli_process import cli_env, run_cli
from tests.fixtures.energy import write_energy_workbook

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def test_help_is_written_for_the_user(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", tmp_path / "prefect", COLUMNS="200")

    top = run_cli(["--help"], env)
    run = run_cli(["run", "--help"], env)
    ui = run_cli(["ui", "--help"], env)

    assert [top.returncode, run.returncode, ui.returncode] == [0, 0, 0]
    assert top.stderr == run.stderr == ui.stderr == ""
    assert " ".join(DESCRIPTION.split()) in " ".join(top.stdout.split())  # as wrapped
    assert "noise settings" not in top.stdout  # the developers' note stays in the source
    assert re.search(
        r"\{energy,siamese,all\}\s+energy: building heating/cooling loads from the UCI ENB2012 "
        r"workbook; siamese: Fashion-MNIST same-or-different; all: both, one after the other",
        run.stdout,
    )
    assert re.search(
        r"--prefect-port PREFECT_PORT\s+port of the Prefect UI: .*\(default 4200\)", ui.stdout
    )
    assert re.search(
        r"--mlflow-port MLFLOW_PORT\s+port of the MLflow UI: .*\(default 5000\)", ui.stdout
    )


@pytest.fixture(scope="module")
def after_a_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, int]:
    """One `trainflow run energy` on a small workbook: its home, stdout, stderr, exit code."""
    root = tmp_path_factory.mktemp("story")
    workbook = write_energy_workbook(root / "mine.xlsx", n_rows=320)
    env = cli_env(root / "home", root / "prefect", TF_NUM_INTRAOP_THREADS="1")
    done = run_cli(["run", "energy", "--source", str(workbook), "--epochs", "2"], env)
    return root / "home", done.stdout, done.stderr, done.returncode


def test_the_run_ends_with_its_summary(after_a_run: tuple[Path, str, str, int]) -> None:
    _, stdout, stderr, returncode = after_a_run
    assert returncode == 0, stderr
    lines = [line.rstrip() for line in stdout.splitlines() if line.strip()]
    assert lines[0] == f"energy: {MODEL_NAME} v1 (new version, champion)"  # nothing before it
    assert lines[-1].startswith("MLflow") and lines[-1].endswith(f"/models/{MODEL_NAME}/versions/1")
    assert "Traceback" not in stderr and "Default" not in stderr


def test_the_registry_shows_one_training_experiment_and_a_described_model(
    after_a_run: tuple[Path, str, str, int],
) -> None:
    home, *_ = after_a_run
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    [experiment] = client.search_experiments()  # no empty "Default" beside it
    assert experiment.name == PIPELINE
    assert experiment.tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND
    assert client.get_registered_model(MODEL_NAME).description == SPEC.description
    version = client.get_model_version(MODEL_NAME, "1")
    assert version.description.startswith(f"{SPEC.description}\n\n")
    assert f": {version.tags[REASON_TAG]}." in version.description  # the decision, and why
    assert "Test metrics: Y1_rmse " in version.description


def test_the_run_spans_training_and_leads_back_to_the_prefect_flow_run(
    after_a_run: tuple[Path, str, str, int],
) -> None:
    home, *_ = after_a_run
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version(MODEL_NAME, "1")
    run = client.get_run(version.run_id)

    [trained] = (home / "models").rglob("model.keras")
    assert run.info.start_time / 1000 < trained.stat().st_mtime  # began before training ended
    flow_run_id = run.data.tags[FLOW_RUN_ID_TAG]
    assert re.fullmatch(UUID, flow_run_id)
    # No PREFECT_API_URL: the run is on the temporary API, which `trainflow ui` shows.
    assert run.data.tags[FLOW_RUN_URL_TAG] == f"http://127.0.0.1:4200/runs/flow-run/{flow_run_id}"
    assert version.tags[FLOW_RUN_ID_TAG] == flow_run_id
    [logged] = run.outputs.model_outputs
    assert client.get_logged_model(logged.model_id).name == MODEL_NAME  # not "model"
