"""`trainflow serve-model` failing before any server starts: one line, exit 1, no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.e2e.servers import HOST, free_port
from tests.fixtures.cli_process import Finished, cli_env, run_cli


def _error_line(done: Finished) -> str:
    """The one line trainflow printed (the home's registry exists: MLflow has nothing to say)."""
    [line] = done.stderr.splitlines()
    return line


def test_no_champion_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", tmp_path / "prefect")

    done = run_cli(["serve-model", "energy", "--port", str(free_port())], env)

    assert done.returncode == 1
    assert done.stdout == ""
    line = _error_line(done)
    assert line.startswith("trainflow: error: no 'champion' version of model 'energy-efficiency'")
    assert line.endswith("run `trainflow run` first")


def test_a_missing_version_is_named(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", tmp_path / "prefect")

    done = run_cli(["serve-model", "siamese", "--version", "7", "--port", str(free_port())], env)

    assert (done.returncode, done.stdout) == (1, "")
    assert _error_line(done).startswith(
        "trainflow: error: no version 7 of model 'fashion-siamese' in the registry at sqlite:"
    )


def test_a_taken_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", tmp_path / "prefect", untouched_home=True)
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]

        done = run_cli(["serve-model", "energy", "--port", str(port)], env)

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"trainflow: error: port {port} on {HOST} is taken; pick another with --port\n"
    )
    assert not (tmp_path / "home").exists()  # refused before the registry was opened
