"""`trainflow ui`: two servers as children; Ctrl-C or either one dying stops both; the links
it prints open each pipeline's runs and the registered models."""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import flows.cli as cli
import flows.servers as children_of
from lib.core.registry import EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND
from tests.e2e.servers import free_port, wait_until
from tests.fixtures.cli_process import Started, cli_env, finish, start_cli

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
FAILING = [sys.executable, "-c", "raise SystemExit(3)"]
UI_START_SECONDS = 240


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """Every child `trainflow ui` starts, to check afterwards that none is left running."""
    children: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def recording(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        child = real_popen(*args, **kwargs)
        children.append(child)
        return child

    monkeypatch.setattr(children_of.subprocess, "Popen", recording)
    return children


def servers(prefect: list[str], mlflow: list[str]) -> Any:
    return lambda *_: {"Prefect": ("http://p:1", prefect), "MLflow": ("http://m:2", mlflow)}


def test_real_commands_bind_to_loopback_with_the_registry_uri() -> None:
    commands = children_of.ui_commands("sqlite:////tmp/reg.db", 4300, 5100)

    assert commands["Prefect"][0] == "http://127.0.0.1:4300"
    assert commands["Prefect"][1][1:] == [
        *("-m", "prefect", "--no-prompt", "server", "start", "--host", "127.0.0.1"),
        *("--port", "4300"),
    ]
    assert commands["MLflow"][0] == "http://127.0.0.1:5100"
    mlflow = commands["MLflow"][1]
    assert mlflow[mlflow.index("--backend-store-uri") + 1] == "sqlite:////tmp/reg.db"
    assert mlflow[mlflow.index("--host") + 1] == "127.0.0.1"


def test_one_server_dying_stops_the_other(
    trainflow_home: Path,
    started: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(children_of, "ui_commands", servers(SLEEPER, FAILING))

    assert cli.main(["ui"]) == 1

    prefect, mlflow = started
    assert prefect.returncode == -signal.SIGTERM and mlflow.returncode == 3
    out, err = capsys.readouterr()
    assert "Prefect UI: http://p:1" in out and "MLflow UI: http://m:2" in out
    assert "the MLflow server exited with code 3" in err
    assert signal.getsignal(signal.SIGTERM) is cli._interrupt  # main's, put back by `ui`
    assert trainflow_home.is_dir()  # where MLflow's SQLite registry lives


def test_ctrl_c_stops_both_and_exits_0(
    trainflow_home: Path, started: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(children_of, "ui_commands", servers(SLEEPER, SLEEPER))

    def interrupted(children: dict[str, subprocess.Popen[bytes]]) -> str:
        assert all(child.poll() is None for child in children.values())
        raise KeyboardInterrupt

    monkeypatch.setattr(children_of, "_first_exited", interrupted)

    assert cli.main(["ui"]) == 0
    assert [child.returncode for child in started] == [-signal.SIGTERM, -signal.SIGTERM]


def _printed(started: Started) -> str:
    """What the running CLI printed so far; `pread` leaves the child's write offset alone."""
    return os.pread(started.stdout.fileno(), 1 << 16, 0).decode()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == httpx.codes.OK
    except httpx.TransportError:
        return False


@pytest.mark.slow  # starts both real servers: 30-90 s
def test_the_printed_links_open_the_runs_of_each_pipeline_and_the_models(tmp_path: Path) -> None:
    prefect, mlflow = free_port(), free_port()
    env = cli_env(tmp_path / "home", tmp_path / "prefect")
    started = start_cli(["ui", "--prefect-port", str(prefect), "--mlflow-port", str(mlflow)], env)
    ui = f"http://127.0.0.1:{mlflow}"
    try:
        wait_until(
            lambda: "Ctrl-C" in _printed(started), UI_START_SECONDS, "links", started.process
        )
        for address in (ui, f"http://127.0.0.1:{prefect}"):
            up = functools.partial(_answers, address)
            wait_until(up, UI_START_SECONDS, address, started.process)
        links = dict(re.findall(r"^  ([a-z ]+): (\S+)$", _printed(started), re.MULTILINE))
        pages = {what: httpx.get(link, timeout=10).status_code for what, link in links.items()}
        found = httpx.post(
            f"{ui}/ajax-api/2.0/mlflow/experiments/search", json={"max_results": 100}
        ).json()
    finally:
        started.process.send_signal(signal.SIGTERM)  # as Ctrl-C: stops both servers
    finished = finish(started)

    assert finished.returncode == 0
    # The CLI's own lines come first; the servers' start-up banners follow them.
    assert finished.stdout.splitlines()[:6] == [
        f"Prefect UI: http://127.0.0.1:{prefect}",
        f"MLflow UI: {ui}",
        *[f"  {what}: {link}" for what, link in links.items()],
        f"Runs reach this Prefect UI when started with PREFECT_API_URL=http://127.0.0.1:{prefect}"
        "/api. Ctrl-C stops both servers.",
    ]
    assert "Traceback" not in finished.stderr
    assert pages == {"energy runs": 200, "siamese runs": 200, "registered models": 200}
    assert links["registered models"] == f"{ui}/#/models"
    # Only the pipelines' experiments (no empty "Default"), each opening as model training,
    # and each link names the id of its pipeline's experiment.
    experiments = {e["name"]: e for e in found["experiments"]}
    assert sorted(experiments) == ["energy", "siamese"]
    for name, experiment in experiments.items():
        assert links[f"{name} runs"] == (
            f"{ui}/#/experiments/{experiment['experiment_id']}/runs?workflowType=machine_learning"
        )
        assert {"key": EXPERIMENT_KIND_TAG, "value": MODEL_TRAINING_KIND} in experiment["tags"]
