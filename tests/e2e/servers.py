"""Throwaway `prefect server start` and `mlflow server` on 127.0.0.1, and child-process helpers.

Shared by the end-to-end tests that need a real server rather than the test harness: the
deployment/worker/trigger test (API only), the report rendering check (API and UI) and the
team-server tests (both servers on PostgreSQL, as a team runs them).
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
MLFLOW = (sys.executable, "-m", "mlflow")


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


def start(
    command: list[str], server: Server, name: str, cwd: Path, **extra_env: str
) -> subprocess.Popen[bytes]:
    """A child in its own process group, so stopping it also stops whatever it forked.

    `extra_env` is for this child alone (a server's database URL, which clients never see).
    """
    log = (server.logs / f"{name}.log").open("wb")
    return subprocess.Popen(
        command, cwd=cwd, env={**server.env, **extra_env}, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health", timeout=2).status_code == httpx.codes.OK
    except httpx.TransportError:
        return False


@contextmanager
def prefect_server(
    tmp_path: Path, *, ui: bool, database_url: str | None = None
) -> Iterator[Server]:
    """A real `prefect server start` with its own PREFECT_HOME, stopped on exit.

    `ui=False` (`--no-ui`) unless a test opens pages: serving the UI first copies its bundles
    into PREFECT_HOME, which costs start-up time. `database_url` (`postgresql+asyncpg://...`)
    puts the server's state in PostgreSQL instead of a SQLite file under PREFECT_HOME.
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
    database = {"PREFECT_API_DATABASE_CONNECTION_URL": database_url} if database_url else {}
    command = command if ui else [*command, "--no-ui"]
    process = start(command, running, "server", tmp_path, **database)
    try:
        wait_until(lambda: healthy(api_url), SERVER_START_SECONDS, f"{api_url}/health", process)
        yield running
    finally:
        stop(process)


@contextmanager
def mlflow_server(
    server: Server, backend_store_uri: str, artifacts_destination: str, **server_env: str
) -> Iterator[str]:
    """A real `mlflow server` for the clients of `server.env`; yields its tracking URI.

    It proxies artifacts (`--serve-artifacts`): clients upload and download through it, so
    they need neither the destination's credentials nor a path on its disk. An `s3://`
    destination takes the server's own `server_env` (`AWS_ACCESS_KEY_ID`,
    `AWS_SECRET_ACCESS_KEY`, `MLFLOW_S3_ENDPOINT_URL`). One worker: one client at a time.
    """
    port = free_port()
    tracking_uri = f"http://{HOST}:{port}"
    command = [
        *MLFLOW, "server", "--backend-store-uri", backend_store_uri,
        "--artifacts-destination", artifacts_destination, "--serve-artifacts",
        "--host", HOST, "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    process = start(command, server, "mlflow", server.logs, **server_env)
    try:
        wait_until(
            lambda: healthy(tracking_uri), SERVER_START_SECONDS, f"{tracking_uri}/health", process
        )
        yield tracking_uri
    finally:
        stop(process)
