"""Drift checks on the real ENB2012 workbook: what is flagged, what is not, and how fast.

    .venv/bin/python benchmarks/drift.py [--data PATH] [--halves 20] [--repeats 3]
        [--no-cli]

Part 1 compares the workbook (768 buildings) with itself, with random halves of itself
(how often the thresholds flag nothing but sampling noise: the false-alarm rate) and with
shifted versions a survey could plausibly deliver; it prints the verdict per scenario and
the PSI of every column. Part 2 trains a champion on the workbook (`trainflow run energy`,
40 epochs, in a throwaway TRAINFLOW_HOME) and times `trainflow check energy` as a scheduler
would call it, on the workbook itself and on a shifted copy, beside `trainflow --help` (the
interpreter and CLI start-up alone).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd

from lib.core.drift import DriftReport
from lib.energy.drift import DRIFT_COLUMNS, energy_drift
from lib.energy.table import read_energy_workbook

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ENB2012_data.xlsx"
CHAMPION_EPOCHS = "40"

Shift = Callable[[pd.DataFrame], pd.DataFrame]
SHIFTS: dict[str, Shift] = {
    "only tall buildings (X5 = 7 m)": lambda f: f[f["X5"] == 7.0],
    "only the most glazed (X7 = 0.4)": lambda f: f[f["X7"] == 0.4],
    "only west-facing (X6 = 5)": lambda f: f[f["X6"] == 5],
    "no glazing (X7 = 0, X8 = 0)": lambda f: f[f["X7"] == 0.0],
    "heating loads read 10 % high (Y1)": lambda f: f.assign(Y1=f["Y1"] * 1.10),
    "surface areas in ft² (X2-X4 x 10.76)": lambda f: f.assign(
        X2=f["X2"] * 10.76, X3=f["X3"] * 10.76, X4=f["X4"] * 10.76
    ),
    "surface area 2 % larger (X2)": lambda f: f.assign(X2=f["X2"] * 1.02),
    "bootstrap resample (same population)": lambda f: f.sample(
        len(f), replace=True, random_state=0
    ),
}


def scenarios(frame: pd.DataFrame, halves: int) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """(name, reference, incoming) for each comparison."""
    found = [("the workbook against itself", frame, frame)]
    rng = np.random.default_rng(0)
    for k in range(halves):
        order = rng.permutation(len(frame))
        half = len(frame) // 2
        found.append((f"random halves #{k}", frame.iloc[order[:half]], frame.iloc[order[half:]]))
    found += [(name, frame, shift(frame)) for name, shift in SHIFTS.items()]
    return found


def print_statistics(frame: pd.DataFrame, halves: int) -> None:
    results = [(name, energy_drift(ref, new)) for name, ref, new in scenarios(frame, halves)]
    halves_results = [report for name, report in results if name.startswith("random halves")]
    shown = [(n, r) for n, r in results if not n.startswith("random halves")]
    print(f"{'scenario':40} {'rows':>5}  verdict")
    for name, report in shown:
        print(f"{name:40} {report.incoming_rows:5d}  {report.verdict()}")
    if halves_results:
        flagged = sum(report.drifted for report in halves_results)
        print(f"{'random halves (' + str(halves) + ' draws)':40} {len(frame) // 2:5d}  "
              f"flagged {flagged} of {halves}")  # fmt: skip
    print()
    print("PSI per column (* flagged)")
    print(f"{'scenario':40} " + " ".join(f"{c:>6}" for c in DRIFT_COLUMNS))
    for name, report in shown:
        print(f"{name:40} " + " ".join(_psi_cell(report, c) for c in DRIFT_COLUMNS))
    if halves_results:
        worst = {c: max(_psi(r, c) for r in halves_results) for c in DRIFT_COLUMNS}
        print(f"{'random halves: largest PSI':40} " + " ".join(f"{worst[c]:6.3f}" for c in worst))
        ks = {c: _largest([_ks(r, c) for r in halves_results]) for c in DRIFT_COLUMNS}
        print(f"{'random halves: largest KS D':40} " + " ".join(_cell(ks[c]) for c in ks))


def _psi(report: DriftReport, name: str) -> float:
    return next(c.psi for c in report.columns if c.name == name)


def _ks(report: DriftReport, name: str) -> float | None:
    return next(c.ks_statistic for c in report.columns if c.name == name)


def _largest(values: list[float | None]) -> float | None:
    """The largest value; None for a category column (no KS test on codes)."""
    numbers = [value for value in values if value is not None]
    return max(numbers) if numbers else None


def _cell(value: float | None) -> str:
    return f"{'—':>6}" if value is None else f"{value:6.3f}"


def _psi_cell(report: DriftReport, name: str) -> str:
    column = next(c for c in report.columns if c.name == name)
    return f"{column.psi:5.2f}{'*' if column.flagged else ' '}"


def write_workbook(frame: pd.DataFrame, target: Path) -> Path:
    """The frame as a workbook laid out like the UCI one (headers in row 1)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(DRIFT_COLUMNS))
    for row in frame[list(DRIFT_COLUMNS)].itertuples(index=False):
        sheet.append([float(value) for value in row])
    book.save(target)
    return target


def trainflow(args: list[str], env: dict[str, str]) -> tuple[int, float, float]:
    """Run `trainflow ARGS`; exit code, wall seconds and CPU seconds (user + system).

    CPU seconds say what the command costs on a machine shared with other work, where wall
    time mostly says how busy the machine was.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if done.returncode not in (0, 3):
        raise SystemExit(f"trainflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.returncode, seconds, cpu


def print_timings(workbook: Path, frame: pd.DataFrame, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        env = {
            **os.environ,
            "TRAINFLOW_HOME": str(folder / "home"),
            "PREFECT_HOME": str(folder / "prefect"),
            "PYTHONPATH": str(REPO_ROOT),
        }
        for key in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "TRAINFLOW_MIRROR"):
            env.pop(key, None)
        _, seconds, _ = trainflow(
            ["run", "energy", "--epochs", CHAMPION_EPOCHS, "--source", str(workbook)], env
        )
        print(f"champion trained and registered in {seconds:.0f} s (not part of the check)")
        shifted = write_workbook(SHIFTS["only tall buildings (X5 = 7 m)"](frame),
                                 folder / "tall.xlsx")  # fmt: skip
        cases = {
            "trainflow --help": ["--help"],
            "trainflow check energy ENB2012_data.xlsx": ["check", "energy", str(workbook)],
            "trainflow check energy tall.xlsx": ["check", "energy", str(shifted)],
        }
        print(f"{'command':42} {'exit':>4} {'wall median':>11} {'wall min':>8} {'CPU median':>10}"
              f"  ({repeats} runs, seconds)")  # fmt: skip
        for name, args in cases.items():
            runs = [trainflow(args, env) for _ in range(repeats)]
            wall = [seconds for _, seconds, _ in runs]
            cpu = statistics.median(cpu for _, _, cpu in runs)
            print(f"{name:42} {runs[0][0]:4d} {statistics.median(wall):11.2f} {min(wall):8.2f} "
                  f"{cpu:10.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--halves", type=int, default=20, help="random half splits to draw")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each timed command")
    parser.add_argument("--no-cli", action="store_true", help="skip training and CLI timings")
    args = parser.parse_args()
    print("load average (1, 5, 15 min) at start: " + ", ".join(
        f"{x:.2f}" for x in os.getloadavg()))  # fmt: skip
    frame = read_energy_workbook(args.data)
    print_statistics(frame, args.halves)
    if not args.no_cli:
        print()
        print_timings(args.data, frame, args.repeats)
    print("load average (1, 5, 15 min) at end: " + ", ".join(
        f"{x:.2f}" for x in os.getloadavg()))  # fmt: skip


if __name__ == "__main__":
    main()
