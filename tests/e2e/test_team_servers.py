"""Team servers for real: Prefect and MLflow on PostgreSQL, used by machines that share no disk.

One PostgreSQL (tests/fixtures/postgres.py), a `prefect server start` and an `mlflow server`
on it, all on 127.0.0.1 for the module. Each "machine" is a process with its own
TRAINFLOW_HOME and PREFECT_HOME: what one leaves for another can only travel through the
servers. The Kubernetes deployments of prefect.yaml are deployed against the same Prefect
server; no container engine or cluster runs here, so their Jobs are rendered, not started.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import prefect
import psycopg2
import pytest
import yaml
from mlflow import MlflowClient
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName
from prefect.utilities.templating import apply_values

from lib.core.registry import CHAMPION_ALIAS, FLOW_RUN_ID_TAG, FLOW_RUN_URL_TAG
from lib.energy.constants import MODEL_NAME, PREDICTED
from tests.conftest import REPO_ROOT
from tests.e2e.servers import PREFECT, Server, mlflow_server, prefect_server
from tests.fixtures.cli_process import cli_env, run_cli
from tests.fixtures.energy import HEADERS, energy_rows, write_energy_workbook
from tests.fixtures.postgres import Postgres

pytestmark = pytest.mark.slow

CLI_SECONDS = 300
LOCK_SECONDS = 120
BLOCKED_SECONDS = 3  # how long a waiting machine is watched not to get the lock
KUBERNETES_POOL = "trainflow-kubernetes"
IMAGE = "registry.example.org/trainflow:test"
# The Kubernetes base job template Prefect ships (what `--type kubernetes` fetches, offline).
WORKER_METADATA = Path(prefect.__file__).parent.joinpath(
    "server", "api", "collections_data", "views", "aggregate-worker-metadata.json"
)


@dataclass(frozen=True)
class Team:
    """The servers a team shares, and where each keeps its state."""

    prefect: Server
    prefect_db: str  # psycopg2 URLs of the two servers' databases
    mlflow_db: str
    tracking_uri: str
    artifacts: Path  # the MLflow server's --artifacts-destination


@pytest.fixture(scope="module")
def team(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    root = tmp_path_factory.mktemp("team")
    prefect_db = postgres.create_database("prefect")
    mlflow_db = postgres.create_database("mlflow")
    artifacts = root / "artifacts"
    with (
        prefect_server(
            root, ui=False, database_url=postgres.url(prefect_db, "postgresql+asyncpg")
        ) as server,
        mlflow_server(
            server, postgres.url(mlflow_db, "postgresql+psycopg2"), str(artifacts)
        ) as tracking_uri,
    ):
        yield Team(
            prefect=server,
            prefect_db=postgres.url(prefect_db),
            mlflow_db=postgres.url(mlflow_db),
            tracking_uri=tracking_uri,
            artifacts=artifacts,
        )


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        connection.close()


def machine(root: Path, name: str, **servers: str) -> dict[str, str]:
    """A user's shell on another machine: its own home and Prefect home, the team's servers."""
    return cli_env(root / name, root / f"{name}-prefect", TF_NUM_INTRAOP_THREADS="1", **servers)


def test_a_run_registers_on_the_servers_and_another_machine_predicts(
    team: Team, tmp_path: Path
) -> None:
    workbook = write_energy_workbook(tmp_path / "buildings.xlsx", n_rows=320)
    servers = {"PREFECT_API_URL": team.prefect.api_url, "MLFLOW_TRACKING_URI": team.tracking_uri}
    laptop = machine(tmp_path, "laptop", **servers)

    done = run_cli(["run", "energy", "--source", str(workbook), "--epochs", "2"], laptop)

    assert done.returncode == 0, done.screen
    assert "Traceback" not in done.screen
    lines = [line.rstrip() for line in done.stdout.splitlines() if line.strip()]
    assert lines[0] == f"energy: {MODEL_NAME} v1 (new version, champion)"
    assert lines[-1].endswith(f"{team.tracking_uri}/#/models/{MODEL_NAME}/versions/1")

    # The flow run is in the Prefect server's PostgreSQL database, not under the laptop's.
    [(flow_run_id, flow, state)] = query(
        team.prefect_db,
        "SELECT r.id::text, f.name, r.state_type FROM flow_run r JOIN flow f ON f.id = r.flow_id",
    )
    assert (flow, state) == ("energy", "COMPLETED")
    assert not list((tmp_path / "laptop-prefect").glob("*.db"))

    # The version and its alias are in the MLflow server's database; the files behind its
    # artifact store, none in the laptop's home.
    assert query(team.mlflow_db, "SELECT name, alias, version FROM registered_model_aliases") == [
        (MODEL_NAME, CHAMPION_ALIAS, 1)
    ]
    registry = MlflowClient(tracking_uri=team.tracking_uri, registry_uri=team.tracking_uri)
    version = registry.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS)
    assert version.tags[FLOW_RUN_ID_TAG] == flow_run_id
    ui_url = team.prefect.api_url.removesuffix("/api")
    assert version.tags[FLOW_RUN_URL_TAG] == f"{ui_url}/runs/flow-run/{flow_run_id}"
    assert list(team.artifacts.rglob("*.keras"))
    assert not (tmp_path / "laptop" / "mlartifacts").exists()
    assert not (tmp_path / "laptop" / "mlflow.db").exists()

    # Another machine, with nothing but the tracking URI, loads the champion and predicts.
    rows = pd.DataFrame(energy_rows(5, seed=9), columns=list(HEADERS))
    inputs, output = tmp_path / "inputs.csv", tmp_path / "predictions.parquet"
    rows.drop(columns=["Y1", "Y2"]).to_csv(inputs, index=False)
    elsewhere = machine(tmp_path, "elsewhere", MLFLOW_TRACKING_URI=team.tracking_uri)

    predicted = run_cli(["predict", "energy", str(inputs), "--output", str(output)], elsewhere)

    assert predicted.returncode == 0, predicted.screen
    assert "Traceback" not in predicted.screen
    frame = pd.read_parquet(output)
    assert list(frame.columns[8:]) == [*PREDICTED, "in_domain", "domain_note"]
    assert len(frame) == 5 and frame["Y1_predicted"].notna().all()
    assert not (tmp_path / "elsewhere" / "mlflow.db").exists()


@dataclass
class Promoter:
    """A `tests.fixtures.promotion_child` process and the file its stdout goes to."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @classmethod
    def start(cls, env: dict[str, str], folder: Path, timeout: float, *release: Path) -> Promoter:
        folder.mkdir()
        stdout, stderr = folder / "stdout", folder / "stderr"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.fixtures.promotion_child", str(timeout),
                 *map(str, release)],
                cwd=REPO_ROOT, env=env, stdout=out, stderr=err, start_new_session=True,
            )  # fmt: skip
        return cls(process, stdout, stderr)

    def steps(self) -> dict[str, float]:
        lines = self.stdout.read_text().splitlines()
        return {step: at for line in lines for step, at in json.loads(line).items()}

    def wait_for(self, step: str) -> float:
        deadline = time.monotonic() + LOCK_SECONDS
        while step not in self.steps():
            assert self.process.poll() is None, f"ended before '{step}': {self.stderr.read_text()}"
            assert time.monotonic() < deadline, f"no '{step}' within {LOCK_SECONDS} s"
            time.sleep(0.1)
        return self.steps()[step]

    def finish(self) -> int:
        try:
            return self.process.wait(timeout=LOCK_SECONDS)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def test_two_machines_never_promote_at_once(team: Team, tmp_path: Path) -> None:
    # Three homes, so no file lock is shared: only the Prefect server can keep them apart.
    def env(name: str) -> dict[str, str]:
        return machine(tmp_path, name, PREFECT_API_URL=team.prefect.api_url)

    release = tmp_path / "release"
    holder = Promoter.start(env("holder"), tmp_path / "a", LOCK_SECONDS, release)
    try:
        holder.wait_for("acquired")
        impatient = Promoter.start(env("impatient"), tmp_path / "b", 2)
        patient = Promoter.start(env("patient"), tmp_path / "c", LOCK_SECONDS)

        assert impatient.finish() == 1
        assert impatient.stderr.read_text() == (
            f"trainflow: error: Could not promote '{MODEL_NAME}': another run held the "
            f"concurrency limit 'trainflow-promote-{MODEL_NAME}' of the Prefect server at "
            f"{team.prefect.api_url} for 2 s\n"
        )  # and nothing else: no traceback, no log line of Prefect's internals
        assert set(impatient.steps()) == {"waiting"}

        patient.wait_for("waiting")
        time.sleep(BLOCKED_SECONDS)
        assert "acquired" not in patient.steps()  # waits while the holder holds
        release.touch()
        assert holder.finish() == 0 and patient.finish() == 0, patient.stderr.read_text()
        assert patient.steps()["acquired"] >= holder.steps()["released"]
    finally:
        release.touch()
        holder.finish()


def kubernetes_job_template() -> dict[str, Any]:
    metadata = json.loads(WORKER_METADATA.read_text())
    return dict(metadata["prefect-kubernetes"]["kubernetes"]["default_base_job_configuration"])


def rendered_job(template: dict[str, Any], job_variables: dict[str, Any]) -> dict[str, Any]:
    """The Job manifest a Kubernetes worker makes of `template` and a deployment's variables."""
    defaults = {
        name: spec["default"]
        for name, spec in template["variables"]["properties"].items()
        if "default" in spec
    }
    configuration = apply_values(template["job_configuration"], {**defaults, **job_variables})
    return configuration["job_manifest"]


def test_kubernetes_deployments_carry_image_env_and_requests(team: Team, tmp_path: Path) -> None:
    planned = {
        entry["name"]: entry
        for entry in yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]
        if entry["work_pool"]["name"] == KUBERNETES_POOL
    }
    assert planned, f"no deployment on {KUBERNETES_POOL} in prefect.yaml"
    template_file = tmp_path / "kubernetes-job.json"
    template_file.write_text(json.dumps(kubernetes_job_template()))
    env = {**team.prefect.env, "TRAINFLOW_IMAGE": IMAGE}

    def prefect_cli(*args: str) -> None:
        done = subprocess.run(
            [*PREFECT, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
            timeout=CLI_SECONDS,
        )  # fmt: skip
        assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"

    prefect_cli(
        "work-pool", "create", KUBERNETES_POOL, "--type", "kubernetes",
        "--base-job-template", str(template_file),
    )  # fmt: skip
    prefect_cli("--no-prompt", "deploy", *(f"--name={name}" for name in planned))

    async def read_back() -> tuple[Any, dict[str, Any]]:
        async with PrefectClient(team.prefect.api_url) as client:
            pool = await client.read_work_pool(KUBERNETES_POOL)
            found = await client.read_deployments(
                work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[KUBERNETES_POOL]))
            )
        return pool, {deployment.name: deployment for deployment in found}

    pool, deployed = asyncio.run(read_back())
    assert set(deployed) == set(planned)
    for name, entry in planned.items():
        deployment = deployed[name]
        variables = entry["work_pool"]["job_variables"]
        assert deployment.work_pool_name == KUBERNETES_POOL
        assert deployment.job_variables == {**variables, "image": IMAGE}
        assert deployment.pull_steps == entry["pull"]
        assert deployment.parameters == entry["parameters"]
        assert deployment.global_concurrency_limit is not None
        assert deployment.global_concurrency_limit.limit == 1

        job = rendered_job(pool.base_job_template, deployment.job_variables)
        [container] = job["spec"]["template"]["spec"]["containers"]
        assert container["image"] == IMAGE
        assert container["env"] == variables["env"]
        assert container["resources"]["requests"] == {
            "cpu": variables["cpu_request"],
            "memory": variables["memory_request"],
        }
        assert container["resources"]["limits"]["memory"] == variables["memory_limit"]
