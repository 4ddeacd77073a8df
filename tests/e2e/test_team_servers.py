"""Team servers for real: Prefect and MLflow on PostgreSQL, used by machines that share no disk.

One PostgreSQL (tests/fixtures/postgres.py), a `prefect server start` and an `mlflow server`
on it with its artifacts in the S3 store (SeaweedFS), all on 127.0.0.1 for the module. Each
"machine" is a process with its own TRAINFLOW_HOME and PREFECT_HOME: what one leaves for
another can only travel through the servers and the store. Prefect process workers and a
Dask scheduler with its workers run `retrain-all` and the energy sweep through their
deployments. The Kubernetes deployments of prefect.yaml are deployed against the same Prefect
server; no container engine or cluster runs here, so their Jobs are rendered, not started.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import prefect
import psycopg2
import pytest
import yaml
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import arun_deployment
from prefect.utilities.templating import apply_values

from flows.schedules import WORK_POOL
from lib.core.registry import (
    CHAMPION_ALIAS,
    DECISION_TAG,
    FLOW_RUN_ID_TAG,
    FLOW_RUN_URL_TAG,
    HOME_TAG,
    REASON_TAG,
)
from lib.energy.constants import GATE, MODEL_NAME, PREDICTED
from tests.conftest import REPO_ROOT
from tests.e2e.servers import (
    HOST,
    PREFECT,
    Server,
    free_port,
    mlflow_server,
    prefect_server,
    start,
    stop,
)
from tests.fixtures.cli_process import cli_env, run_cli
from tests.fixtures.energy import HEADERS, energy_rows, write_energy_workbook
from tests.fixtures.fashion import write_fashion_mirror
from tests.fixtures.postgres import Postgres
from tests.fixtures.seaweedfs import S3Server

pytestmark = pytest.mark.slow

CLI_SECONDS = 300
FLOW_RUN_SECONDS = 600
DASK_START_SECONDS = 120
DASK_SCHEDULER = (sys.executable, "-m", "distributed.cli.dask_scheduler")
DASK_WORKER = (sys.executable, "-m", "distributed.cli.dask_worker")
EPOCHS = 2
WORKER_LABEL = "prefect.worker.name"  # on a flow run: the worker that ran it (as in the UI)
MLFLOW_LEFTOVERS = {"mlflow.db", "mlruns", "mlartifacts"}
# The steps of each pipeline, by the start of their task runs' names.
PIPELINE_STEPS = {
    "retrain-all": ("energy-", "siamese-"),
    "energy": (
        "ingest-", "excel-to-parquet-", "split-energy-", "train-energy-", "evaluate-energy-",
        "register-energy-efficiency",
    ),
    "siamese": (
        "download-", "idx-to-parquet-train", "idx-to-parquet-test", "make-pairs-",
        "train-siamese-", "evaluate-siamese-", "profile-siamese-", "register-fashion-siamese",
    ),
}  # fmt: skip
LOCK_SECONDS = 120
BLOCKED_SECONDS = 3  # how long a waiting machine is watched not to get the lock
KUBERNETES_POOL = "trainflow-kubernetes"
ARTIFACTS_PREFIX = "mlflow-artifacts"
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
    s3: S3Server  # the store every machine shares; the MLflow server's artifacts too
    artifacts: str  # the MLflow server's --artifacts-destination, in the S3 store

    def artifact_keys(self) -> list[str]:
        """Every object the MLflow server keeps in the bucket."""
        pages = (
            self.s3.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.s3.bucket, Prefix=f"{ARTIFACTS_PREFIX}/")
        )
        return [entry["Key"] for page in pages for entry in page.get("Contents", [])]


@pytest.fixture(scope="module")
def team(
    postgres: Postgres, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Team]:
    root = tmp_path_factory.mktemp("team")
    prefect_db = postgres.create_database("prefect")
    mlflow_db = postgres.create_database("mlflow")
    artifacts = s3_server.store(ARTIFACTS_PREFIX)
    # The server alone signs in to the bucket; its clients upload through it.
    credentials = {**s3_server.env(), "MLFLOW_S3_ENDPOINT_URL": s3_server.endpoint}
    with (
        prefect_server(
            root, ui=False, database_url=postgres.url(prefect_db, "postgresql+asyncpg")
        ) as server,
        mlflow_server(
            server, postgres.url(mlflow_db, "postgresql+psycopg2"), artifacts, **credentials
        ) as tracking_uri,
    ):
        yield Team(
            prefect=server,
            prefect_db=postgres.url(prefect_db),
            mlflow_db=postgres.url(mlflow_db),
            tracking_uri=tracking_uri,
            s3=s3_server,
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


def machine(
    root: Path, name: str, *, untouched_home: bool = False, **servers: str
) -> dict[str, str]:
    """A user's shell on another machine: its own home and Prefect home, the team's servers.

    `untouched_home`: no registry laid in the home (see `cli_env`), for machines that must
    leave nothing of MLflow's on their disk.
    """
    return cli_env(
        root / name, root / f"{name}-prefect", untouched_home=untouched_home,
        TF_NUM_INTRAOP_THREADS="1", **servers,
    )  # fmt: skip


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
    assert any(key.endswith(".keras") for key in team.artifact_keys())
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


@dataclass(frozen=True)
class Cluster:
    """Machines that share no disk: each process has its own home, all share `shared`."""

    root: Path
    shared: dict[str, str]  # the servers and the S3 store, as every machine's shell has them
    logs: Server  # where each process's output goes (`servers.start` writes to its logs)

    def machine(self, name: str, **extra: str) -> dict[str, str]:
        return machine(self.root, name, **self.shared, **extra)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        return start(command, replace(self.logs, env=env), name, self.root)


@contextmanager
def dask_workers(cluster: Cluster, address: str, homes: dict[str, str]) -> Iterator[None]:
    """One `dask worker` process per name in `homes`, each with that home and no store
    settings: the sweep's flow hands them its store (`flows.cluster`)."""
    from distributed import Client

    with ExitStack() as stack:
        for name, home in homes.items():
            command = [*DASK_WORKER, address, "--name", name, "--nthreads", "1"]
            env = machine(cluster.root, home, untouched_home=True)
            stack.callback(stop, cluster.start(home, [*command, "--no-dashboard"], env))
        with Client(address, timeout=DASK_START_SECONDS) as client:
            client.wait_for_workers(len(homes), timeout=DASK_START_SECONDS)
        yield


async def deployment_run(
    cluster: Cluster, name: str, parameters: dict[str, Any], **job_variables: Any
) -> FlowRun:
    async with PrefectClient(cluster.shared["PREFECT_API_URL"]) as client:
        run = await arun_deployment(
            name,
            client=client,
            parameters=parameters,
            job_variables=job_variables or None,
            timeout=FLOW_RUN_SECONDS,
            poll_interval=2,
            as_subflow=False,
        )
    assert run.state is not None and run.state.is_completed(), (
        f"{name} ended {run.state}; Prefect workers' logs in {cluster.logs.logs}"
    )
    return run


async def runs_and_tasks(api_url: str, parent: FlowRun) -> dict[str, FlowRun]:
    """The flow run and its subflow runs, by flow name."""
    async with PrefectClient(api_url) as client:
        children = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id])
            )
        )
        return {(await client.read_flow(run.flow_id)).name: run for run in [parent, *children]}


async def task_states(api_url: str, run: FlowRun) -> dict[str, str]:
    """Task run name -> state name, for one flow run."""
    async with PrefectClient(api_url) as client:
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
        )
    return {task.name: task.state.name for task in tasks if task.state}


def steps_done(states: dict[str, str], steps: tuple[str, ...]) -> dict[str, list[str]]:
    """The state names of each step's task runs (a task run's name starts with its step)."""
    return {step: [v for k, v in states.items() if k.startswith(step)] for step in steps}


async def sweep_trials(api_url: str, run: FlowRun) -> list[dict[str, str]]:
    """The sweep's `energy-sweep-trials` table, as the Prefect UI shows it."""
    async with PrefectClient(api_url) as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]),
                key=ArtifactFilterKey(any_=["energy-sweep-trials"]),
            )
        )
    [table] = found
    data = table.data if isinstance(table.data, list) else json.loads(str(table.data))
    return list(data)


def gate_said(version: ModelVersion) -> bool:
    """Whether the version beat the champion it met, as the champion gate wrote on it, with
    the two scores on the same test data (`lib.core.gate`); checks the numbers agree."""
    if version.tags[REASON_TAG].startswith("no champion yet"):
        return True
    match = re.fullmatch(
        rf"candidate {GATE.score}=(\S+) (beats|does not beat) champion {GATE.score}=(\S+) "
        r"on the same test data",
        version.tags[REASON_TAG],
    )
    assert match, version.tags[REASON_TAG]
    candidate, champion, beat = float(match[1]), float(match[3]), match[2] == "beats"
    assert beat == (candidate < champion if GATE.lower_is_better else candidate > champion)
    return beat


def test_retrain_all_and_a_sweep_through_deployments_on_machines_sharing_no_disk(
    team: Team, tmp_path: Path
) -> None:
    """Two Prefect process workers and two Dask workers, each with its own home and Prefect
    home, share only the two servers and the S3 store: retrain-all and an energy sweep run
    through their deployments, then the sweep again on Dask workers with fresh homes."""
    data = tmp_path / "data"  # a file share the team reads its inputs from (../shared/data)
    data.mkdir()
    # Its own data: no candidate of the module's other tests is one of this test's.
    workbook = write_energy_workbook(data / "buildings.xlsx", n_rows=320, seed=5)
    write_fashion_mirror(data / "mirror")
    shared = {
        "PREFECT_API_URL": team.prefect.api_url,
        "MLFLOW_TRACKING_URI": team.tracking_uri,
        "TRAINFLOW_STORE": team.s3.store(tmp_path.name),
        **team.s3.env(),
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    cluster = Cluster(tmp_path, shared, replace(team.prefect, logs=logs))
    registry = MlflowClient(tracking_uri=team.tracking_uri, registry_uri=team.tracking_uri)

    def versions() -> dict[str, ModelVersion]:
        found = registry.search_model_versions(f"name = '{MODEL_NAME}'")
        return {str(version.version): version for version in found}

    before = versions()  # the module's other tests may have registered (and promoted) some
    held = registry.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS) if before else None
    deployer = cluster.machine("deployer")
    for args in (
        ["work-pool", "create", WORK_POOL, "--type", "process"],
        ["--no-prompt", "deploy", "--name=retrain-all", "--name=energy-sweep"],
    ):
        done = subprocess.run(
            [*PREFECT, *args], cwd=REPO_ROOT, env=deployer, capture_output=True, text=True,
            timeout=CLI_SECONDS,
        )  # fmt: skip
        assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"

    prefect_workers = {"prefect-a": tmp_path / "prefect-a", "prefect-b": tmp_path / "prefect-b"}
    port = free_port()
    address = f"tcp://{HOST}:{port}"
    sweep = {
        "params": {
            "pipeline": "energy", "seeds": "0-1", "values": [f"epochs={EPOCHS}"],
            "preset": "default", "source": str(workbook), "workers": 2, "dask_address": address,
        }
    }  # fmt: skip
    with ExitStack() as stack:
        for name in prefect_workers:
            # Runs read local files only under the worker's source roots (and its mirror).
            env = cluster.machine(
                name, TRAINFLOW_SOURCE_ROOTS=str(data), TRAINFLOW_MIRROR=str(data / "mirror"),
                PREFECT_WORKER_QUERY_SECONDS="1",
            )  # fmt: skip
            command = [*PREFECT, "worker", "start", "--pool", WORK_POOL, "--name", name]
            stack.callback(stop, cluster.start(name, command, env))
        scheduler = [*DASK_SCHEDULER, "--host", HOST, "--port", str(port), "--no-dashboard"]
        stack.callback(stop, cluster.start("scheduler", scheduler, cluster.machine("scheduler")))

        with dask_workers(cluster, address, {"a": "dask-a", "b": "dask-b"}):
            retrained = asyncio.run(
                deployment_run(
                    cluster,
                    "retrain-all/retrain-all",
                    {
                        "energy": {"source": str(workbook), "epochs": EPOCHS},
                        "siamese": {"epochs": 1},
                    },
                    # The siamese data: the mirror's tiny set (tests.fixtures.fashion_engine).
                    command=f"{sys.executable} -m tests.fixtures.fashion_engine",
                )
            )
            swept = asyncio.run(deployment_run(cluster, "sweep/energy-sweep", sweep))
        trained_in = {
            home
            for home in ("dask-a", "dask-b")
            if list((tmp_path / home).glob("models/**/*.keras"))
        }
        after_sweep = versions()
        for home in ("dask-a", "dask-b"):
            shutil.rmtree(tmp_path / home)  # what the trials trained there is gone from every disk
        with dask_workers(cluster, address, {"a": "dask-c", "b": "dask-d"}):
            again = asyncio.run(deployment_run(cluster, "sweep/energy-sweep", sweep))
            leftovers = [p for p in tmp_path.rglob("*") if p.name in MLFLOW_LEFTOVERS]
            # And from a laptop with `trainflow sweep --dask-address`: its own registry (no
            # tracking URI), the team's Prefect server and store.
            laptop = machine(
                tmp_path, "laptop", PREFECT_API_URL=team.prefect.api_url,
                TRAINFLOW_STORE=shared["TRAINFLOW_STORE"], **team.s3.env(),
            )  # fmt: skip
            args = ["sweep", "energy", "--seeds", "0-1", "--set", f"epochs={EPOCHS}", "--json"]
            local = run_cli([*args, "--source", str(workbook), "--dask-address", address], laptop)

    api = team.prefect.api_url
    # retrain-all and both pipelines completed, every step of each (none of them cached: the
    # store under this test's prefix was empty).
    runs = asyncio.run(runs_and_tasks(api, retrained))
    assert set(runs) == {"retrain-all", "energy", "siamese"}
    assert {name: run.state_name for name, run in runs.items()} == dict.fromkeys(runs, "Completed")
    for flow, steps in PIPELINE_STEPS.items():
        done = steps_done(asyncio.run(task_states(api, runs[flow])), steps)
        assert all(states and set(states) == {"Completed"} for states in done.values()), done
    assert len(steps_done(asyncio.run(task_states(api, runs["siamese"])), ("download-",))[
        "download-"
    ]) == 4  # fmt: skip

    # Each flow run went to one of the two Prefect workers; the versions it registered name
    # that worker's home (the run's environment is its worker's) and no other.
    ran_by = {str(run.id): run.labels.get(WORKER_LABEL) for run in (retrained, swept, again)}
    assert set(ran_by.values()) <= set(prefect_workers), ran_by

    # The sweep: one trial on each Dask worker, each trained in that worker's own home.
    first = asyncio.run(sweep_trials(api, swept))
    assert sorted(trial["ran on"].split(" (pid")[0] for trial in first) == [
        "dask worker a", "dask worker b"
    ]  # fmt: skip
    assert [trial["trained"] for trial in first] == ["trained", "trained"]
    assert trained_in == {"dask-a", "dask-b"}

    # Two new versions: retrain-all's energy model, then the sweep's winner. Each was judged
    # by the gate against the champion of its day on its own test rows (better: the lower
    # mean_rmse there); the alias moved only when the gate said better, so the champion is
    # the last one that won, or the one before this test if neither did.
    new = {number: after_sweep[number] for number in after_sweep.keys() - before.keys()}
    by_run = {version.tags[FLOW_RUN_ID_TAG]: version for version in new.values()}
    assert set(by_run) == {str(runs["energy"].id), str(swept.id)}
    retrain_version, sweep_version = by_run[str(runs["energy"].id)], by_run[str(swept.id)]
    assert int(sweep_version.version) > int(retrain_version.version)
    for version in (retrain_version, sweep_version):
        decision = "promoted" if gate_said(version) else "kept champion"
        assert version.tags[DECISION_TAG] == decision, version.tags
    champion = next((v for v in (sweep_version, retrain_version) if gate_said(v)), held)
    holder = registry.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS)
    assert champion is not None and str(holder.version) == str(champion.version)
    for run_id, version in by_run.items():
        worker = ran_by[str(retrained.id) if run_id == str(runs["energy"].id) else run_id]
        home = registry.get_run(version.run_id).data.tags[HOME_TAG]
        assert home == str(prefect_workers[worker]), (version.version, worker, home)

    # The models' files are in the bucket, behind the MLflow server; nothing of MLflow's is
    # on any machine's disk.
    keys = team.artifact_keys()
    for version in new.values():
        model_id = version.source.removeprefix("models:/")
        assert any(f"/models/{model_id}/" in k and k.endswith("model.keras") for k in keys)
    assert not leftovers

    # Again, on Dask workers with fresh homes: every trial from the store's records, whichever
    # worker took it, the same winner, and no new version.
    rerun = asyncio.run(sweep_trials(api, again))
    assert [trial["trained"] for trial in rerun] == ["cached", "cached"]
    assert {trial["ran on"].split(" (pid")[0] for trial in rerun} <= {
        "dask worker a", "dask worker b"
    }  # fmt: skip
    unchanged = ("tried", "validation mean_rmse", "winner")
    assert [{k: t[k] for k in unchanged} for t in rerun] == [
        {k: t[k] for k in unchanged} for t in first
    ]
    assert versions().keys() == after_sweep.keys()

    # The laptop's sweep trained nothing either, and its registry's version 1 is the winner's
    # model, from the store: the homes it was trained in are gone.
    assert local.returncode == 0, local.screen[-3000:]
    assert "Traceback" not in local.screen
    summary = json.loads(local.stdout)
    assert [trial["trained"] for trial in summary["trials"]] == [False, False]
    assert [f"{trial['validation']['metrics'][GATE.score]:.4f}" for trial in summary["trials"]] == [
        trial[f"validation {GATE.score}"] for trial in first
    ]
    assert first[summary["winner"]]["winner"] == "winner"
    assert summary["run"]["version"] == "1" and summary["run"]["newly_registered"]
    [model] = (tmp_path / "laptop" / "cache").rglob("model.keras")
    assert model.parent.name == summary["trials"][summary["winner"]]["model"]["model"]["sha256"]
    assert not [p for p in tmp_path.glob("dask-*/models/**/*.keras")]
    for name in prefect_workers:  # the runs' own output went to their worker's
        assert "Traceback" not in (logs / f"{name}.log").read_text(errors="replace")
