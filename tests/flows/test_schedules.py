"""prefect.yaml and `trainflow serve` run the same deployments, as flows/schedules.py says."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
import yaml
from prefect import Flow
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.flows import load_flow_from_entrypoint

import flows.cli as cli
from flows.schedules import CONCURRENCY_LIMIT, DATA_UPDATED_TRIGGER, PLANS, TIMEZONE, WORK_POOL
from tests.conftest import REPO_ROOT

PLANNED = {plan.name: plan for plan in PLANS}
KUBERNETES_SUFFIX = "-kubernetes"
# The one parameter a Kubernetes twin changes: the sweep's trials go to the cluster's Dask.
SCHEDULER_IN_THE_CLUSTER = {
    "energy-sweep-kubernetes": {
        "params": PLANNED["energy-sweep"].parameters["params"]
        | {"dask_address": "tcp://dask-scheduler.trainflow.svc.cluster.local:8786"}
    }
}


@pytest.fixture(scope="module")
def prefect_yaml() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())


@pytest.fixture(scope="module")
def all_deployments(prefect_yaml: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in prefect_yaml["deployments"]}


@pytest.fixture(scope="module")
def deployments(all_deployments: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The deployments on the process pool: the ones `trainflow serve` runs too."""
    return {
        name: entry
        for name, entry in all_deployments.items()
        if entry["work_pool"]["name"] == WORK_POOL
    }


def test_yaml_has_exactly_the_planned_deployments(deployments: dict[str, Any]) -> None:
    assert set(deployments) == {"energy-retrain", "siamese-retrain", "retrain-all", "energy-sweep"}
    assert set(deployments) == set(PLANNED)


def test_kubernetes_deployments_run_their_twins_plans(all_deployments: dict[str, Any]) -> None:
    twins = {
        name: PLANNED[name.removesuffix(KUBERNETES_SUFFIX)]
        for name in all_deployments
        if name.endswith(KUBERNETES_SUFFIX)
    }
    assert set(twins) == {
        "energy-retrain-kubernetes",
        "siamese-retrain-kubernetes",
        "energy-sweep-kubernetes",
    }
    for name, plan in twins.items():
        entry = all_deployments[name]
        assert entry["entrypoint"] == plan.entrypoint
        if plan.cron:
            assert entry["schedules"] == [{"cron": plan.cron, "timezone": TIMEZONE}]
        else:
            assert "schedules" not in entry
        assert entry["concurrency_limit"] == CONCURRENCY_LIMIT
        assert entry["parameters"] == plan.parameters | SCHEDULER_IN_THE_CLUSTER.get(name, {})
        # The image holds the checkout where the Dockerfile puts it, and runs as quietly.
        (pull,) = entry["pull"]
        assert pull["prefect.deployments.steps.set_working_directory"]["directory"] == (
            "/opt/trainflow"
        )
        assert "WORKDIR /opt/trainflow" in (REPO_ROOT / "Dockerfile").read_text()
        env = entry["work_pool"]["job_variables"]["env"]
        assert env.items() >= cli.QUIET_DEFAULTS.items()


@pytest.mark.parametrize("name", sorted(PLANNED))
def test_yaml_deployment_matches_its_plan(deployments: dict[str, Any], name: str) -> None:
    entry, plan = deployments[name], PLANNED[name]

    assert entry["entrypoint"] == plan.entrypoint
    schedules = [{"cron": plan.cron, "timezone": TIMEZONE}] if plan.cron else []
    assert entry.get("schedules", []) == schedules
    assert entry["concurrency_limit"] == CONCURRENCY_LIMIT
    assert entry["parameters"] == plan.parameters
    assert entry["description"] == plan.description
    assert tuple(entry["tags"]) == plan.tags
    assert entry.get("triggers", []) == list(plan.triggers)
    assert entry["work_pool"]["name"] == WORK_POOL
    assert entry["work_pool"]["job_variables"]["env"] == cli.QUIET_DEFAULTS


def test_the_worker_image_installs_every_package_and_nothing_else() -> None:
    # No engine here builds it (README): at least every package pip installs is copied in.
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    admitted = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.removesuffix("*")
        assert f"COPY {package} {package}\n" in dockerfile
        assert f"!{package}/" in admitted
    assert "python -m pip install --no-cache-dir . \\\n" in dockerfile  # not -e, no extras
    assert "*" in admitted  # the context is what is admitted: never .venv or data


def test_only_the_sweep_waits_to_be_started(deployments: dict[str, Any]) -> None:
    assert [name for name, entry in deployments.items() if not entry.get("schedules")] == [
        "energy-sweep"
    ]
    assert deployments["energy-sweep"]["parameters"]["params"]["pipeline"] == "energy"


def test_only_retrain_all_listens_for_new_data(deployments: dict[str, Any]) -> None:
    assert [name for name, entry in deployments.items() if entry.get("triggers")] == ["retrain-all"]
    (trigger,) = deployments["retrain-all"]["triggers"]
    assert trigger == DATA_UPDATED_TRIGGER
    assert trigger["expect"] == ["trainflow.data.updated"]
    assert trigger["match"] == {"prefect.resource.id": "trainflow.data.*"}


def test_runs_are_pulled_into_the_checkout_prefect_deploy_ran_in(
    prefect_yaml: dict[str, Any],
) -> None:
    # A relative directory would resolve against the worker's temporary directory.
    (build,) = prefect_yaml["build"]
    shell = build["prefect.deployments.steps.run_shell_script"]
    assert shell["script"] == "pwd"
    (pull,) = prefect_yaml["pull"]
    directory = pull["prefect.deployments.steps.set_working_directory"]["directory"]
    assert directory == "{{ " + shell["id"] + ".stdout }}"


@pytest.mark.parametrize("name", sorted(PLANNED))
def test_entrypoint_loads_the_planned_flow(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)  # how `prefect deploy` and the worker resolve it
    plan = PLANNED[name]

    loaded: Flow[..., Any] = load_flow_from_entrypoint(plan.entrypoint)

    assert isinstance(loaded, Flow)
    assert loaded.name == plan.load_flow().name
    assert loaded.fn.__name__ == plan.load_flow().fn.__name__
    if plan.load_flow().name == "sweep":  # what its Dask workers import by name
        assert loaded.fn.__module__ == "flows.sweep"


def test_serve_builds_the_same_deployments_without_a_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: dict[str, Any] = {}

    def fake_serve(*deployments: RunnerDeployment, limit: int | None = None) -> None:
        served.update({d.name: d for d in deployments}, limit=limit)

    monkeypatch.setattr("prefect.serve", fake_serve)

    assert cli.main(["serve", "--limit", "2"]) == 0

    assert served.pop("limit") == 2
    assert set(served) == set(PLANNED)
    for name, deployment in served.items():
        plan = PLANNED[name]
        if plan.cron is None:
            assert deployment.schedules == []
        else:
            (schedule,) = deployment.schedules
            assert isinstance(schedule.schedule, CronSchedule)
            assert (schedule.schedule.cron, schedule.schedule.timezone) == (plan.cron, TIMEZONE)
        assert deployment.concurrency_limit == CONCURRENCY_LIMIT
        assert deployment.parameters == plan.parameters
        assert deployment.work_pool_name is None
        assert deployment.entrypoint is not None
        assert deployment.entrypoint.endswith(plan.entrypoint)
        assert len(deployment.triggers) == len(plan.triggers)
    (trigger,) = served["retrain-all"].triggers
    assert trigger.expect == {"trainflow.data.updated"}
    assert trigger.match.model_dump() == {"prefect.resource.id": "trainflow.data.*"}
