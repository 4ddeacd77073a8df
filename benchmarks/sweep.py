"""Energy trials on Dask worker processes against the same trials one after another.

    .venv/bin/python benchmarks/sweep.py [--data PATH] [--trials 8] [--epochs 30]
        [--workers 2]

Targets (issue #12): 8 energy trials (seeds 0-7, the default preset) on 2 Dask worker
processes run at least 1.6x as fast as the same 8 one after another in one process on the
2-core machine, with the same validation score per trial; and the overhead a trial pays for
the cluster and the store (Prefect task runs, cache lookups, result records, Dask's
scheduling and transfers) is at most 1 s per trial on loopback.

The Dask side is the real command, `trainflow sweep energy --seeds 0-N --set epochs=E
--workers W --json`, in a throwaway TRAINFLOW_HOME; its JSON gives each trial's validation
metrics and the seconds its fit and its validation took inside the worker. Its time is the
trials' wall time on a running cluster (the cluster's start-up and the flow's data steps are
printed apart, not counted). The sequential side trains the same trials here, in this one
process with TensorFlow's default thread pools, through the same lib steps
(`lib.energy.train.train_energy`, `lib.energy.validation.validation_metrics`) on the same
table and splits. The same trials also run on W plain processes of one TensorFlow thread
each (no Dask, no Prefect, no store): what W trials side by side can gain on this machine at
all, the ceiling of the Dask speed-up. Last, trial 0 runs once more alone, held to one core:
against its sequential time, the bound on the speed-up of W trials that get a core each.

Both parallel sides measure each trial's fit and validation seconds inside the process that
ran it. Per trial, the worker time outside them (W x wall time / trials - fit and
validation) is building, saving and loading the model on a plain process; on Dask it is also
what the cluster and the store add: task runs, cache lookups, result records, transfers,
the wait for the next trial. Overhead per trial = the Dask figure - the plain one (the
issue's "scheduling, upload, download"). Printed apart: how much slower the same fits and
validations run inside the workers than on plain processes (on a machine whose every core
trains, the flow process, the Prefect API and the scheduler take their CPU from the fits),
and the two together, W x (Dask wall time - plain wall time) / trials.
Run it on a quiet machine; it prints the load average beside the figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "ENB2012_data.xlsx"
SYNTHETIC_ROWS = 320
SCORE = "mean_rmse"
SPEED_UP_TARGET = 1.6
OVERHEAD_TARGET_SECONDS = 1.0


def workbook(data: Path, scratch: Path) -> Path:
    """The real workbook when it is there, else a synthetic one of the same schema."""
    if data.is_file():
        return data
    sys.path.insert(0, str(REPO_ROOT))
    from tests.fixtures.energy import write_energy_workbook

    print(f"{data} not found: a synthetic workbook of {SYNTHETIC_ROWS} rows instead")
    return write_energy_workbook(scratch / "synthetic.xlsx", n_rows=SYNTHETIC_ROWS)


def on_dask(source: Path, trials: int, epochs: int, workers: int, root: Path) -> dict[str, Any]:
    """`trainflow sweep` in a child process with its own state; its --json summary."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TRAINFLOW_", "MLFLOW_", "PREFECT_API_URL"))
    }
    env.update(
        TRAINFLOW_HOME=str(root / "home"),
        PREFECT_HOME=str(root / "prefect"),
        PYTHONPATH=str(REPO_ROOT),
    )
    args = [
        sys.executable, "-m", "flows.cli", "sweep", "energy", "--json",
        "--seeds", f"0-{trials - 1}", "--set", f"epochs={epochs}",
        "--workers", str(workers), "--source", str(source),
    ]  # fmt: skip
    done = subprocess.run(args, env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"trainflow sweep failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def prepare(source: Path, trials: int, root: Path) -> tuple[Path, list[Path]]:
    """The table and one split per seed, as the sweep's data steps make them."""
    from lib.core.hashing import sha256_file
    from lib.energy.splits import split_rows, table_rows, write_split
    from lib.energy.table import excel_to_parquet

    table = root / "energy.parquet"
    excel_to_parquet(source, table, source_sha256=sha256_file(source), code_version="benchmark")
    rows = table_rows(table)
    splits = []
    for seed in range(trials):
        splits.append(root / f"split-{seed}.json")
        write_split(split_rows(rows, seed=seed), splits[-1])
    return table, splits


def start_trials() -> None:
    """Set up a process to train trials as a sweep worker does, and import TensorFlow."""
    from lib.core.malloc import cap_arenas
    from lib.core.quiet import quiet_tensorflow_import

    cap_arenas()  # as the sweep's workers do, before TensorFlow starts
    quiet_tensorflow_import()  # before `lib.energy.train` imports it
    import lib.energy.train  # noqa: F401  (TensorFlow's start-up is not a trial's time)


def train_trial(table: Path, split: Path, seed: int, epochs: int, folder: Path) -> dict[str, float]:
    """One trial as the sweep runs it: its seconds in all, its fit's and its validation's
    apart (as a sweep worker reports them), and its validation score."""
    from lib.energy.recipes import PRESETS
    from lib.energy.train import train_energy
    from lib.energy.validation import validation_metrics

    # As the sweep does (flows.sweep): every trial fits on the training rows only.
    recipe = PRESETS["default"].model_copy(update={"epochs": epochs, "fit_rows": "train"})
    started = time.perf_counter()
    trained = train_energy(table, split, recipe, seed, folder)
    validating = time.perf_counter()
    score = validation_metrics(trained.model, table, split)[SCORE]
    ended = time.perf_counter()
    return {
        "seconds": ended - started,
        "fit": trained.seconds,
        "validation": ended - validating,
        "score": score,
    }


def sequential(table: Path, splits: list[Path], epochs: int, root: Path) -> list[dict[str, float]]:
    """The trials one after another in this process (TensorFlow's default thread pools)."""
    start_trials()
    results = []
    for seed, split in enumerate(splits):
        results.append(train_trial(table, split, seed, epochs, root / f"model-{seed}"))
        print(f"  sequential trial {seed}: {results[-1]['seconds']:.1f} s", flush=True)
    return results


def _one_thread() -> None:
    from flows.cluster import THREAD_VARIABLES  # the variables a sweep worker sets

    for variable in THREAD_VARIABLES:
        os.environ[variable] = "1"
    start_trials()


def _one_core() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    _one_thread()


def on_one_core(table: Path, split: Path, epochs: int, root: Path) -> dict[str, float]:
    """Trial 0 alone in a process held to one core: what each of W trials side by side gets.

    A trial's Python thread hands every step to TensorFlow's compute thread; with a core each
    they overlap, on one core they take turns. Its time against trial 0 with every core
    (sequential) bounds the speed-up of any scheduler: W x sequential / one core.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_one_core) as pool:
        pool.submit(time.sleep, 1.0).result()
        return pool.submit(train_trial, table, split, 0, epochs, root / "one-core").result()


def plain_processes(
    table: Path, splits: list[Path], epochs: int, workers: int, root: Path
) -> tuple[float, list[dict[str, float]]]:
    """The trials on `workers` plain processes of one TensorFlow thread each: no Dask, no
    Prefect, no store. Their wall time is what this machine allows two trials side by side,
    the ceiling of the Dask speed-up."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_one_thread) as pool:
        list(pool.map(time.sleep, [1.0] * workers))  # every process started and initialised
        started = time.perf_counter()
        futures = [
            pool.submit(train_trial, table, split, seed, epochs, root / f"plain-{seed}")
            for seed, split in enumerate(splits)
        ]
        results = [future.result() for future in futures]
        return time.perf_counter() - started, results


def _inside(trial: dict[str, Any]) -> float:
    """A Dask trial's fit and validation seconds, as measured inside its worker."""
    return float(trial["model"]["seconds"] + trial["validation"]["seconds"])


def report(
    dask: dict[str, Any],
    alone: list[dict[str, float]],
    plain: tuple[float, list[dict[str, float]]],
    workers: int,
) -> None:
    trials = dask["trials"]
    plain_wall, plain_trials = plain
    print()
    print(f"{'trial':>5} {'seq s':>7} {'plain fit+val s':>15} {'dask fit+val s':>14}  "
          f"{'val ' + SCORE + ' seq':>18} {'dask':>8} {'|diff|':>8}  ran on")  # fmt: skip
    for trial, mine, side in zip(trials, alone, plain_trials, strict=True):
        theirs = trial["validation"]["metrics"][SCORE]
        beside = side["fit"] + side["validation"]
        print(f"{trial['index']:>5} {mine['seconds']:7.1f} {beside:15.1f} {_inside(trial):14.1f}  "
              f"{mine['score']:18.4f} {theirs:8.4f} {abs(theirs - mine['score']):8.1e}  "
              f"{trial['worker']} pid {trial['pid']}")  # fmt: skip
    n = len(trials)
    seq_total = sum(r["seconds"] for r in alone)
    wall = dask["trials_seconds"]
    dask_inside = sum(_inside(t) for t in trials)
    plain_inside = sum(r["fit"] + r["validation"] for r in plain_trials)
    # Worker time per trial outside the fit and validation: on plain processes that is
    # building, saving and loading the model; on Dask also the task runs, cache lookups,
    # result records, store transfers and the wait for the next trial.
    dask_outside = (workers * wall - dask_inside) / n
    plain_outside = (workers * plain_wall - plain_inside) / n
    overhead = dask_outside - plain_outside
    slower = dask_inside / plain_inside - 1
    total = workers * (wall - plain_wall) / n
    print()
    print(f"sequential, 1 process:         {seq_total:8.1f} s")
    print(f"dask, {workers} worker processes:    {wall:8.1f} s   (cluster start "
          f"{dask['cluster_seconds']:.1f} s, not counted)")  # fmt: skip
    print(f"speed-up:                      {seq_total / wall:8.2f} x   "
          f"(target >= {SPEED_UP_TARGET})")  # fmt: skip
    print(f"{workers} plain processes, no Dask:  {plain_wall:8.1f} s   speed-up "
          f"{seq_total / plain_wall:.2f} x: the ceiling on this machine")  # fmt: skip
    print(f"overhead per trial:            {overhead:8.2f} s   (target <= "
          f"{OVERHEAD_TARGET_SECONDS}: scheduling, task runs, store; worker time outside the "
          f"fit and validation, {dask_outside:.2f} s on Dask - {plain_outside:.2f} s on "
          "plain processes)")  # fmt: skip
    print(f"fit and validation inside the workers: {100 * slower:+.1f} % against plain "
          f"processes ({dask_inside / n:.1f} s against {plain_inside / n:.1f} s a trial): "
          "the cores shared with the flow process, the Prefect API and the scheduler")  # fmt: skip
    print(f"all of it, per trial:          {total:8.2f} s   (worker time on Dask - on plain "
          "processes)")  # fmt: skip
    worst = max(
        abs(t["validation"]["metrics"][SCORE] - r["score"])
        for t, r in zip(trials, alone, strict=True)
    )
    worst_plain = max(
        abs(p["score"] - r["score"]) for p, r in zip(plain_trials, alone, strict=True)
    )
    print(f"largest validation difference: {worst:8.1e}   (plain processes {worst_plain:.1e})")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the ENB2012 workbook")
    parser.add_argument("--trials", type=int, default=8, help="seeds 0..trials-1")
    parser.add_argument(
        "--epochs", type=int, default=30, help="epochs per trial (the default preset's 30)"
    )
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory(prefix="trainflow-sweep-bench-") as scratch:
        root = Path(scratch)
        source = workbook(args.data, root)
        print(f"{args.trials} energy trials of {args.epochs} epochs on {source.name}; "
              f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        print(f"  on Dask ({args.workers} workers) ...", flush=True)
        (root / "dask").mkdir()
        dask = on_dask(source, args.trials, args.epochs, args.workers, root / "dask")
        (root / "alone").mkdir()
        table, splits = prepare(source, args.trials, root / "alone")
        print(f"  on {args.workers} plain processes ...", flush=True)
        plain = plain_processes(table, splits, args.epochs, args.workers, root / "alone")
        print("  one after another ...", flush=True)
        alone = sequential(table, splits, args.epochs, root / "alone")
        print("  trial 0 on one core ...", flush=True)
        one_core = on_one_core(table, splits[0], args.epochs, root / "alone")
        report(dask, alone, plain, args.workers)
        bound = args.workers * alone[0]["seconds"] / one_core["seconds"]
        print(f"trial 0 alone: {alone[0]['seconds']:.1f} s on every core, "
              f"{one_core['seconds']:.1f} s held to one core: no scheduler of "
              f"{args.workers} one-core trials beats {bound:.2f} x here")  # fmt: skip


if __name__ == "__main__":
    main()
