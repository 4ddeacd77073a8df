"""Cold run vs warm re-run of `trainflow run all`: how much a re-run with nothing changed costs.

    .venv/bin/python benchmarks/rerun.py [--mirror ../shared/data] [--warm-runs 2] [-- ARGS]

ARGS go to `trainflow run all` (e.g. `-- --epochs 1` for a quick try; the recorded figures
use none).

Each run is `trainflow run all` as a child process, against one fresh `TRAINFLOW_HOME` and
a Prefect server on 127.0.0.1 with a fresh `PREFECT_HOME`, as a scheduled re-run would see
them (the first run is really cold; later ones see its cache and registry). Prints the wall
time of every run, the warm/cold ratio (target: at most 5 %), and the state of every task
run of the last warm run, read back from that server.

A server rather than the ephemeral API: a process that ends takes its ephemeral API down
with it, and the task-run events of its last second are lost (Prefect logs "Error flushing
... events"), so the read-back would miss the last tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

DEFAULT_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "data"
TARGET_RATIO = 0.05
SERVER_START_SECONDS = 180
POLL_SECONDS = 0.5


@contextmanager
def prefect_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """A `prefect server start` on a free loopback port; yields its API URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-ui"]
    api_url = f"http://127.0.0.1:{port}/api"
    with log.open("wb") as output:
        server = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not _healthy(api_url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Prefect server did not start; see {log}")
            time.sleep(POLL_SECONDS)
        yield api_url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def timed_run(env: dict[str, str], log: Path, run_args: list[str]) -> tuple[float, int]:
    """Wall seconds and exit code of one `trainflow run all`, its output kept in `log`."""
    command = [str(Path(sys.executable).with_name("trainflow")), "run", "all", *run_args]
    started = time.perf_counter()
    with log.open("wb") as output:
        code = subprocess.run(command, env=env, stdout=output, stderr=subprocess.STDOUT).returncode
    return time.perf_counter() - started, code


async def task_states_since(started: float) -> list[tuple[str, str, str]]:
    """(flow run, task run, state) of every task run of the flow runs started after `started`.

    The server records task runs from events, a moment after the run reported them: first
    wait (bounded) as the CLI does, until each flow run's `register` task is on record.
    """
    from datetime import UTC, datetime

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterStartTime,
    )

    from flows.records import wait_until_recorded

    since = datetime.fromtimestamp(started, UTC)
    async with get_client() as client:
        flow_runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                start_time=FlowRunFilterStartTime(after_=since)  # type: ignore[arg-type]
            )
        )
        await asyncio.to_thread(wait_until_recorded, [run.id for run in flow_runs])
        rows = []
        for flow_run in sorted(flow_runs, key=lambda run: run.name):
            task_runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
            )
            ordered = sorted(task_runs, key=lambda run: run.expected_start_time or since)
            rows += [(flow_run.name, run.name, (run.state and run.state.name) or "?")
                     for run in ordered]  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR)
    parser.add_argument("--warm-runs", type=int, default=2)
    parser.add_argument("run_args", nargs="*", help="after --: arguments for trainflow run all")
    args = parser.parse_args()
    if not args.mirror.is_dir():
        parser.error(
            f"no data mirror at {args.mirror} (the real data sets, laid out as shared/data)"
        )

    state = Path(tempfile.mkdtemp(prefix="trainflow-rerun-"))
    env = {
        **os.environ,
        "TRAINFLOW_HOME": str(state / "home"),
        "PREFECT_HOME": str(state / "prefect"),
        "TRAINFLOW_MIRROR": str(args.mirror.resolve()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    print(f"state under {state}; logs in *.log there", flush=True)

    runs: list[tuple[str, float]] = []
    with prefect_server(env, state / "server.log") as api_url:
        env["PREFECT_API_URL"] = api_url
        last_start = 0.0
        for index in range(1 + args.warm_runs):
            label = "cold" if index == 0 else f"warm {index}"
            log = state / f"run-{index}.log"
            last_start = time.time()
            seconds, code = timed_run(env, log, args.run_args)
            print(f"{label:<8} {seconds:8.1f} s  exit {code}", flush=True)
            if code != 0:
                print(f"run failed; see {log}", file=sys.stderr)
                return 1
            runs.append((label, seconds))
        os.environ["PREFECT_API_URL"] = api_url  # this process reads back from the server
        states = asyncio.run(task_states_since(last_start))

    cold = runs[0][1]
    print("\nrun       wall s   / cold")
    for label, seconds in runs:
        print(f"{label:<8} {seconds:7.1f}   {seconds / cold:6.1%}")
    worst = max(seconds for _, seconds in runs[1:]) / cold
    verdict = "met" if worst <= TARGET_RATIO else "MISSED"
    print(f"slowest warm run / cold run: {worst:.1%} (target <= {TARGET_RATIO:.0%}: {verdict})")

    print("\ntask runs of the last warm run")
    for flow_run, task_run, task_state in states:
        print(f"{flow_run:<24} {task_run:<48} {task_state}")
    not_cached = [row for row in states if row[2] != "Cached" and not row[1].startswith("register")]
    print(f"tasks other than register that were not Cached: {len(not_cached)}")
    return 0 if worst <= TARGET_RATIO and not not_cached else 1


if __name__ == "__main__":
    sys.exit(main())
