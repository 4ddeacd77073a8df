"""`trainflow ui`: two servers as children; Ctrl-C or either one dying stops both."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import flows.cli as cli

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
FAILING = [sys.executable, "-c", "raise SystemExit(3)"]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """Every child `trainflow ui` starts, to check afterwards that none is left running."""
    children: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def recording(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        child = real_popen(*args, **kwargs)
        children.append(child)
        return child

    monkeypatch.setattr(cli.subprocess, "Popen", recording)
    return children


def servers(prefect: list[str], mlflow: list[str]) -> Any:
    return lambda *_: {"Prefect": ("http://p:1", prefect), "MLflow": ("http://m:2", mlflow)}


def test_real_commands_bind_to_loopback_with_the_registry_uri() -> None:
    commands = cli.ui_commands("sqlite:////tmp/reg.db", 4300, 5100)

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
    monkeypatch.setattr(cli, "ui_commands", servers(SLEEPER, FAILING))
    handler = signal.getsignal(signal.SIGTERM)

    assert cli.main(["ui"]) == 1

    prefect, mlflow = started
    assert prefect.returncode == -signal.SIGTERM and mlflow.returncode == 3
    out, err = capsys.readouterr()
    assert "Prefect UI: http://p:1" in out and "MLflow UI: http://m:2" in out
    assert "the MLflow server exited with code 3" in err
    assert signal.getsignal(signal.SIGTERM) is handler
    assert trainflow_home.is_dir()  # where MLflow's SQLite registry lives


def test_ctrl_c_stops_both_and_exits_0(
    trainflow_home: Path, started: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "ui_commands", servers(SLEEPER, SLEEPER))

    def interrupted(children: dict[str, subprocess.Popen[bytes]]) -> str:
        assert all(child.poll() is None for child in children.values())
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_first_exited", interrupted)

    assert cli.main(["ui"]) == 0
    assert [child.returncode for child in started] == [-signal.SIGTERM, -signal.SIGTERM]
