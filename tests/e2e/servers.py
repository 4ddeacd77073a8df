"""A throwaway `prefect server start` on 127.0.0.1 and the child-process helpers around it.

Shared by the end-to-end tests that need a real server rather than the test harness: the
deployment/worker/trigger test (API only) and the report rendering check (API and UI).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"
SERVER_START_SECONDS = 180
STOP_SECONDS = 30
POLL_SECONDS = 0.5
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


def healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == httpx.codes.OK
    except httpx.TransportError:
        return False


@contextmanager
def prefect_server(tmp_path: Path, *, ui: bool) -> Iterator[Server]:
    """A real `prefect server start` with its own PREFECT_HOME, stopped on exit.

    `ui=False` (`--no-ui`) unless a test opens pages: serving the UI first copies its bundles
    into PREFECT_HOME, which costs start-up time.
    """
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
    command = [*PREFECT, "server", "start", "--host", HOST, "--port", port]
    process = start(command if ui else [*command, "--no-ui"], running, "server", tmp_path)
    try:
        wait_until(lambda: healthy(api_url), SERVER_START_SECONDS, f"{api_url}/health", process)
        yield running
    finally:
        stop(process)
