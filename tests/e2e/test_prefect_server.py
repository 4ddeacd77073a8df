"""prefect.yaml for real: server, work pool, `prefect deploy`, a process worker, a trigger.

Everything a person would type, run as child processes against a throwaway server on
127.0.0.1; the test talks to that server through its own Prefect client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

from flows.schedules import DATA_UPDATED_EVENT, PLANS, TIMEZONE, WORK_POOL
from lib.core.settings import load_settings
from lib.energy.constants import MODEL_NAME
from tests.conftest import REPO_ROOT
from tests.e2e.servers import POLL_SECONDS, PREFECT, Server, prefect_server, start, stop
from tests.fixtures.energy import write_energy_workbook

pytestmark = pytest.mark.slow

CLI_SECONDS = 300
FLOW_RUN_SECONDS = 600
TRIGGER_SECONDS = 90
EPOCHS = 3  # a registered version is the point, not the fit


def cli(*args: str, server: Server) -> str:
    done = subprocess.run(
        [*PREFECT, *args], cwd=REPO_ROOT, env=server.env, capture_output=True, text=True,
        timeout=CLI_SECONDS,
    )  # fmt: skip
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A real `prefect server start` (API only) with its own PREFECT_HOME; stopped in teardown."""
    with prefect_server(tmp_path, ui=False) as running:
        yield running


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
    # By name: prefect.yaml also holds the Kubernetes twins (tests/e2e/test_team_servers.py).
    cli("--no-prompt", "deploy", *(f"--name={plan.name}" for plan in PLANS), server=server)
    listed = cli("deployment", "ls", server=server)
    assert all(plan.name in listed for plan in PLANS), listed

    # Started elsewhere than the checkout: the pull step must send runs to the checkout.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # A deployment's run reads local files only under the worker's TRAINFLOW_SOURCE_ROOTS.
    allowed = dataclasses.replace(
        server, env={**server.env, "TRAINFLOW_SOURCE_ROOTS": str(tmp_path)}
    )
    worker = start([*PREFECT, "worker", "start", "--pool", WORK_POOL], allowed, "worker", elsewhere)
    workbook = write_energy_workbook(tmp_path / "buildings.xlsx", n_rows=320)

    async def scenario() -> None:
        async with PrefectClient(server.api_url) as client:
            for plan in PLANS:
                deployment = await client.read_deployment_by_name(
                    f"{plan.load_flow().name}/{plan.name}"
                )
                if plan.cron is None:  # started on demand (the sweep)
                    assert deployment.schedules == []
                    continue
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
