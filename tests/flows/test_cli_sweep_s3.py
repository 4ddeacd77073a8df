"""`trainflow sweep --dask-address` on workers that share no disk, only an S3 store.

A Dask scheduler and two workers run as separate processes on 127.0.0.1, each worker with a
`TRAINFLOW_HOME` of its own and no store settings: the sweep hands them its
`TRAINFLOW_STORE` and AWS variables (SeaweedFS). The trials must land on both workers. Then
both worker homes are deleted and the sweep runs again from another home (a second machine
with its own registry): every trial is found in the store's records, and the winner's model,
trained in a deleted home, reaches the new registry from the store.

On one machine every process sees every path, so a worker reads the flow's table where the
flow wrote it; the deleted homes are what shows that nothing needs another's disk.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.fixtures.cli_process import REPO_ROOT, cli_env, run_cli
from tests.fixtures.energy import write_energy_workbook
from tests.fixtures.seaweedfs import S3Server

WORKERS = ("a", "b")
START_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def dask_cluster(root: Path) -> Iterator[str]:
    """A scheduler and one worker per `WORKERS` name, each worker in its own home."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{_free_port()}"
    with ExitStack() as stack:
        scheduler = _start(
            [
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                address.rsplit(":", 1)[1],
                "--no-dashboard",
            ],
            cli_env(root / "scheduler", root / "prefect-scheduler"),
            root / "scheduler.log",
        )
        stack.callback(_stop, scheduler)
        for name in WORKERS:
            env = cli_env(
                root / f"worker-{name}", root / f"prefect-{name}", TF_NUM_INTRAOP_THREADS="1"
            )
            worker = _start(
                [
                    "distributed.cli.dask_worker",
                    address,
                    "--name",
                    name,
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                ],
                env,
                root / f"worker-{name}.log",
            )
            stack.callback(_stop, worker)
        with Client(address, timeout=START_SECONDS) as client:
            client.wait_for_workers(len(WORKERS), timeout=START_SECONDS)
        yield address


@pytest.mark.slow
def test_trials_on_two_homes_share_only_the_store_and_a_rerun_is_all_cache_hits(
    s3_server: S3Server, tmp_path: Path
) -> None:
    workbook = write_energy_workbook(tmp_path / "buildings.xlsx", n_rows=320)
    shared = {
        **s3_server.env(),
        "TRAINFLOW_STORE": s3_server.store(tmp_path.name),
        "TF_NUM_INTRAOP_THREADS": "1",
    }
    homes = [tmp_path / f"worker-{name}" for name in WORKERS]
    with dask_cluster(tmp_path) as address:
        args = ["sweep", "energy", "--seeds", "0-1", "--set", "epochs=2", "--json"]
        args += ["--source", str(workbook), "--dask-address", address]
        first = run_cli(args, cli_env(tmp_path / "flow", tmp_path / "prefect-flow", **shared))
        assert first.returncode == 0, first.screen[-3000:]
        trained_in = {home.name for home in homes if list(home.glob("models/**/model.keras"))}
        for home in homes:
            shutil.rmtree(home)  # the models trained there are gone from every disk
        again = run_cli(args, cli_env(tmp_path / "other", tmp_path / "prefect-other", **shared))

    summary = json.loads(first.stdout)
    trials = summary["trials"]
    assert {trial["worker"] for trial in trials} == {f"dask worker {name}" for name in WORKERS}
    assert [trial["trained"] for trial in trials] == [True, True]
    assert trained_in == {home.name for home in homes}  # each in its own home ...
    assert not (tmp_path / "flow" / "models").exists()  # ... and none in the flow's
    assert summary["run"]["version"] == "1" and summary["run"]["newly_registered"]
    assert "Traceback" not in first.screen

    assert again.returncode == 0, again.screen[-3000:]
    rerun = json.loads(again.stdout)
    assert [trial["trained"] for trial in rerun["trials"]] == [False, False]
    assert [t["validation"] for t in rerun["trials"]] == [t["validation"] for t in trials]
    assert rerun["winner"] == summary["winner"]
    # The other home's own registry: its version 1 is the winner's model, from the store.
    assert rerun["run"]["version"] == "1" and rerun["run"]["newly_registered"]
    [model] = (tmp_path / "other" / "cache").rglob("model.keras")
    assert model.parent.name == trials[summary["winner"]]["model"]["model"]["sha256"]
    assert not any(home.exists() and list(home.glob("models/**")) for home in homes)
    assert "Traceback" not in again.screen
