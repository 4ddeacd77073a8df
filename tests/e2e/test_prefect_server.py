"""prefect.yaml for real: server, work pool, `prefect deploy --all`, a process worker, a trigger.

Everything a person would type, run as child processes against a throwaway server on
127.0.0.1; the test talks to that server through its own Prefect client.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterName,
)
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import arun_deployment
from prefect.events import Event, Resource
from prefect.events.clients import PrefectEventsClient

from flows.energy import MODEL_NAME
from flows.schedules import DATA_UPDATED_EVENT, PLANS, TIMEZONE, WORK_POOL
from lib.settings import load_settings
from tests.conftest import REPO_ROOT
from tests.fixtures.energy import write_energy_workbook

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
SERVER_START_SECONDS = 180
CLI_SECONDS = 300
FLOW_RUN_SECONDS = 600
TRIGGER_SECONDS = 90
STOP_SECONDS = 30
POLL_SECONDS = 0.5
EPOCHS = 20
PREFECT = (sys.executable, "-m", "prefect")


@dataclass(frozen=True)
class Server:
    api_url: str
    env: dict[str, str]  # what every child process (CLI, worker, flow runs) sees
    logs: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_until(
    condition: Callable[[], bool], seconds: float, what: str, process: subprocess.Popen[bytes]
) -> None:
    """Poll `condition`; fail with `what` on timeout or as soon as `process` dies."""
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"{what}: {process.args!r} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {seconds} s waiting for {what}")
        time.sleep(POLL_SECONDS)


def start(command: list[str], server: Server, name: str, cwd: Path) -> subprocess.Popen[bytes]:
    """A child in its own process group, so stopping it also stops whatever it forked."""
    log = (server.logs / f"{name}.log").open("wb")
    return subprocess.Popen(
        command, cwd=cwd, env=server.env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def cli(*args: str, server: Server) -> str:
    done = subprocess.run(
        [*PREFECT, *args], cwd=REPO_ROOT, env=server.env, capture_output=True, text=True,
        timeout=CLI_SECONDS,
    )  # fmt: skip
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == httpx.codes.OK
    except httpx.TransportError:
        return False


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A real `prefect server start` with its own PREFECT_HOME; stopped in teardown."""
    api_url = f"http://{HOST}:{free_port()}/api"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"MLFLOW_TRACKING_URI", "TRAINFLOW_MIRROR"}
    }
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="2",
        TRAINFLOW_HOME=str(tmp_path / "home"),
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Server(api_url=api_url, env=env, logs=logs)
    port = api_url.rsplit(":", 1)[1].removesuffix("/api")
    process = start(
        [*PREFECT, "server", "start", "--host", HOST, "--port", port, "--no-ui"],
        running,
        "server",
        tmp_path,
    )
    try:
        wait_until(lambda: healthy(api_url), SERVER_START_SECONDS, f"{api_url}/health", process)
        yield running
    finally:
        stop(process)


async def energy_run(client: PrefectClient, workbook: Path) -> FlowRun:
    return await arun_deployment(
        "energy/energy-retrain",
        client=client,
        parameters={"params": {"source": str(workbook), "epochs": EPOCHS}},
        timeout=FLOW_RUN_SECONDS,
        poll_interval=2,
    )


async def artifacts_of(client: PrefectClient, run: FlowRun) -> dict[str, Any]:
    found = await client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
    )
    return {artifact.key: artifact for artifact in found if artifact.key}


async def emit_data_updated(api_url: str) -> None:
    # The client emit_event uses underneath, bound to this server: emit_event's process-wide
    # events worker may still point at the session's test harness.
    async with PrefectEventsClient(api_url=api_url) as events:
        await events.emit(
            Event(
                event=DATA_UPDATED_EVENT,
                resource=Resource({"prefect.resource.id": "trainflow.data.e2e"}),
            )
        )


async def triggered_runs(client: PrefectClient) -> list[FlowRun]:
    runs = await client.read_flow_runs(
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["retrain-all"]))
    )
    return [run for run in runs if run.created_by and run.created_by.type == "AUTOMATION"]


def test_deploy_worker_run_and_trigger(server: Server, tmp_path: Path) -> None:
    cli("work-pool", "create", WORK_POOL, "--type", "process", server=server)
    cli("--no-prompt", "deploy", "--all", server=server)
    listed = cli("deployment", "ls", server=server)
    assert all(plan.name in listed for plan in PLANS), listed

    # Started elsewhere than the checkout: the pull step must send runs to the checkout.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    worker = start([*PREFECT, "worker", "start", "--pool", WORK_POOL], server, "worker", elsewhere)
    workbook = write_energy_workbook(tmp_path / "buildings.xlsx", n_rows=120)

    async def scenario() -> None:
        async with PrefectClient(server.api_url) as client:
            for plan in PLANS:
                deployment = await client.read_deployment_by_name(
                    f"{plan.load_flow().name}/{plan.name}"
                )
                (schedule,) = deployment.schedules
                assert schedule.schedule.model_dump(include={"cron", "timezone"}) == {
                    "cron": plan.cron,
                    "timezone": TIMEZONE,
                }

            run = await energy_run(client, workbook)
            assert run.state is not None and run.state.is_completed(), (
                f"energy-retrain ended {run.state}; worker log: {server.logs / 'worker.log'}"
            )
            artifacts = await artifacts_of(client, run)
            assert artifacts["energy-report"].type == "markdown"
            assert f"{MODEL_NAME} version 1" in str(artifacts["energy-report"].data)
            assert artifacts["energy-metrics"].type == "table"
            assert f"#/models/{MODEL_NAME}/versions/1)" in str(artifacts["energy-model"].data)

            # No worker from here on: the triggered retrain-all is created, never executed.
            stop(worker)
            await emit_data_updated(server.api_url)
            deadline = time.monotonic() + TRIGGER_SECONDS
            while not await triggered_runs(client):
                assert time.monotonic() < deadline, (
                    f"no retrain-all run within {TRIGGER_SECONDS} s of '{DATA_UPDATED_EVENT}'"
                )
                await asyncio.sleep(POLL_SECONDS)

    try:
        asyncio.run(scenario())
    finally:
        stop(worker)

    # The run used the worker's environment: the model sits in this test's registry.
    uri = load_settings(server.env).tracking_uri
    registry = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)  # not a stale global
    versions = registry.search_model_versions(f"name = '{MODEL_NAME}'")
    assert [str(v.version) for v in versions] == ["1"]
