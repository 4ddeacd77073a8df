"""Cold run vs warm re-run of `trainflow run all`: how much a re-run with nothing changed costs.

    .venv/bin/python benchmarks/rerun.py [--mirror ../shared/data] [--warm-runs 2] [-- ARGS]

ARGS go to `trainflow run all` (e.g. `-- --epochs 1` for a quick try; the recorded figures
use none).

Each run is the `trainflow run all` a person or a schedule starts, as a child process, against
one fresh `TRAINFLOW_HOME` and `PREFECT_HOME` (so the first run is really cold and the later
ones see its cache and registry). Prints the wall time of every run, the warm/cold ratio
(target: at most 10 %), and the state of every task run of the last warm run, read back from
the Prefect database the runs shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "data"
TARGET_RATIO = 0.10


def timed_run(env: dict[str, str], log: Path, run_args: list[str]) -> tuple[float, int]:
    """Wall seconds and exit code of one `trainflow run all`, its output kept in `log`."""
    command = [str(Path(sys.executable).with_name("trainflow")), "run", "all", *run_args]
    started = time.perf_counter()
    with log.open("wb") as output:
        code = subprocess.run(command, env=env, stdout=output, stderr=subprocess.STDOUT).returncode
    return time.perf_counter() - started, code


async def task_states_since(started: float) -> list[tuple[str, str, str]]:
    """(flow run, task run, state) of every task run of the flow runs created after `started`."""
    from datetime import UTC, datetime

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterStartTime,
    )

    since = datetime.fromtimestamp(started, UTC)
    async with get_client() as client:
        flow_runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since))
        )
        rows = []
        for flow_run in sorted(flow_runs, key=lambda run: run.name):
            task_runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
            )
            for task_run in sorted(task_runs, key=lambda run: run.expected_start_time or since):
                state = task_run.state.name if task_run.state else "?"
                rows.append((flow_run.name, task_run.name, state))
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
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("PREFECT_API_URL", None)
    print(f"state under {state}; logs in run-*.log there", flush=True)

    runs: list[tuple[str, float, int]] = []
    last_start = 0.0
    for index in range(1 + args.warm_runs):
        label = "cold" if index == 0 else f"warm {index}"
        last_start = time.time()
        seconds, code = timed_run(env, state / f"run-{index}.log", args.run_args)
        runs.append((label, seconds, code))
        print(f"{label:<8} {seconds:8.1f} s  exit {code}", flush=True)
        if code != 0:
            print(f"run failed; see {state / f'run-{index}.log'}", file=sys.stderr)
            return 1

    os.environ["PREFECT_HOME"] = env["PREFECT_HOME"]  # read the database the runs wrote
    os.environ.pop("PREFECT_API_URL", None)
    states = asyncio.run(task_states_since(last_start))

    cold = runs[0][1]
    print("\nrun       wall s   / cold")
    for label, seconds, _ in runs:
        print(f"{label:<8} {seconds:7.1f}   {seconds / cold:6.1%}")
    worst = max(seconds for _, seconds, _ in runs[1:]) / cold
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
