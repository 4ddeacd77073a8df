"""Excel at full size: a million-row workbook to validated Parquet, and predictions from it.

    PYTHONPATH=. .venv/bin/python benchmarks/excel.py [--rows N] [--scratch DIR]
        [--home TRAINFLOW_HOME] [--skip openpyxl ...]

Writes (once, cached under --scratch) a workbook of N rows (default 1,000,000) of the energy
schema X1..X8, Y1, Y2 with realistic values, as a spreadsheet writes it; writing it is not
timed. Then, each case in a fresh Python process so that imports count and no case's memory
hides in another's, measures wall seconds, the seconds of the work alone, the child's CPU
seconds (imports included; on a shared machine the nearest figure to an idle one's wall
time) and the peak RSS (the child's own VmHWM):

- ``trainflow``: `lib.energy.table.excel_to_parquet`, the pipeline's stage (file checks,
  calamine, validation, typed Parquet with provenance);
- ``pandas + openpyxl`` and ``pandas + calamine``: `pandas.read_excel` then `to_parquet`,
  no validation;
- ``trainflow predict energy``: the CLI on the same workbook, ``--output`` a Parquet file;
  rows per second. It needs a champion: the one registered under --home, or else one trained
  first into a temporary home (``trainflow run energy --epochs 40`` on a 320-row workbook).

Prints the load average (the machine is shared) and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.energy import write_energy_workbook, write_plain_energy_workbook

REPO_ROOT = Path(__file__).resolve().parents[1]
KIB = 1024
CHILD_TIMEOUT_SECONDS = 1_800
TRAIN_EPOCHS = "40"  # enough for the 320-row workbook to pass the gate (tests/flows/test_cli.py)
TARGET_SECONDS = 8.0
TARGET_PEAK_MB = 500
# Each child prints one JSON line: the seconds of its work and its peak RSS in kB.
PEAK = (
    "def peak_kb():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            return int(line.split()[1])\n"
)
CONVERT = {
    "trainflow": (
        "from lib.core.hashing import sha256_file\n"
        "from lib.energy.table import excel_to_parquet\n"
        "digest = sha256_file(source)\n"
        "start = time.perf_counter()\n"
        "rows = excel_to_parquet(source, target, source_sha256=digest, code_version='bench')\n"
    ),
    "pandas + openpyxl": (
        "import pandas as pd\n"
        "start = time.perf_counter()\n"
        "frame = pd.read_excel(source, engine='openpyxl')\n"
        "frame.to_parquet(target)\n"
        "rows = len(frame)\n"
    ),
    "pandas + calamine": (
        "import pandas as pd\n"
        "start = time.perf_counter()\n"
        "frame = pd.read_excel(source, engine='calamine')\n"
        "frame.to_parquet(target)\n"
        "rows = len(frame)\n"
    ),
}
CHILD = (
    "import json, resource, sys, time\n"
    "from pathlib import Path\n"
    f"{PEAK}"
    "source, target = Path(sys.argv[1]), Path(sys.argv[2])\n"
    "{body}"
    "seconds = time.perf_counter() - start\n"
    "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
    "cpu = usage.ru_utime + usage.ru_stime\n"
    "print(json.dumps({{'rows': rows, 'seconds': seconds, 'cpu': cpu, 'peak_kb': peak_kb()}}))\n"
)
# `python -m flows.cli ARGS` as a user runs it, then its peak RSS into the file REPORT.
CLI_RUNNER = (
    "import atexit, runpy, sys\n"
    f"{PEAK}"
    "report = sys.argv.pop(1)\n"
    "atexit.register(lambda: open(report, 'w').write(str(peak_kb())))\n"
    "sys.argv[0] = 'trainflow'\n"
    "runpy.run_module('flows.cli', run_name='__main__', alter_sys=True)\n"
)


@dataclass(frozen=True)
class Result:
    case: str
    rows: int
    seconds: float
    work_seconds: float
    peak_mb: float
    note: str = ""
    cpu_seconds: float = float("nan")


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def convert(case: str, source: Path, scratch: Path) -> Result:
    target = scratch / f"{case.replace(' ', '').replace('+', '-')}.parquet"
    code = CHILD.format(body=CONVERT[case])
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, str(source), str(target)],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=REPO_ROOT,
        timeout=CHILD_TIMEOUT_SECONDS,
        check=False,
    )
    seconds = time.perf_counter() - start
    target.unlink(missing_ok=True)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Result(case, 0, seconds, float("nan"), float("nan"), f"failed: {tail}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return Result(
        case,
        report["rows"],
        seconds,
        report["seconds"],
        report["peak_kb"] / KIB,
        cpu_seconds=report["cpu"],
    )


def trainflow(
    args: list[str], home: Path, scratch: Path
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run the CLI; returns the process, its wall seconds and its peak RSS in MB."""
    report = scratch / "cli-peak.txt"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CLI_RUNNER, str(report), *args],
        capture_output=True,
        text=True,
        env=child_env(TRAINFLOW_HOME=str(home), PREFECT_HOME=str(scratch / "prefect")),
        cwd=scratch,
        timeout=CHILD_TIMEOUT_SECONDS,
        check=False,
    )
    seconds = time.perf_counter() - start
    peak_mb = int(report.read_text()) / KIB if report.exists() else float("nan")
    return done, seconds, peak_mb


def ensure_champion(home: Path, scratch: Path) -> str:
    """Train a champion into `home` unless one is registered there; say which."""
    if (home / "mlflow.db").exists():
        return f"champion of {home}"
    small = write_energy_workbook(scratch / "small.xlsx")
    args = ["run", "energy", "--source", str(small), "--epochs", TRAIN_EPOCHS]
    done, seconds, _ = trainflow(args, home, scratch)
    if done.returncode != 0:
        raise SystemExit(f"training a champion failed:\n{done.stdout}\n{done.stderr}")
    return f"champion trained first ({seconds:.0f} s)"


def predict(source: Path, rows: int, home: Path, scratch: Path) -> Result:
    note = ensure_champion(home, scratch)
    output = scratch / "predictions.parquet"
    args = ["predict", "energy", str(source), "--output", str(output)]
    done, seconds, peak_mb = trainflow(args, home, scratch)
    output.unlink(missing_ok=True)
    if done.returncode != 0:
        tail = ((done.stderr + done.stdout).strip().splitlines() or ["no output"])[-1]
        return Result("trainflow predict energy", 0, seconds, float("nan"), peak_mb, tail)
    return Result(
        "trainflow predict energy",
        rows,
        seconds,
        float("nan"),
        peak_mb,
        f"{rows / seconds:,.0f} rows/s; {note}",
    )


def workbook(scratch: Path, rows: int) -> Path:
    path = scratch / f"energy-{rows}.xlsx"
    if not path.exists():
        partial = path.with_suffix(".partial")
        write_plain_energy_workbook(partial, rows, seed=0)
        partial.replace(path)
    return path


def table_row(result: Result) -> str:
    work = "" if result.work_seconds != result.work_seconds else f"{result.work_seconds:.1f}"
    cpu = "" if result.cpu_seconds != result.cpu_seconds else f"{result.cpu_seconds:.1f}"
    return (
        f"| {result.case} | {result.rows:,} | {result.seconds:.1f} | {work} | {cpu} "
        f"| {result.peak_mb:.0f} | {result.note} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--scratch",
        type=Path,
        default=Path(tempfile.gettempdir()) / "trainflow-excel-benchmark",
        help="where the workbook is cached between runs",
    )
    parser.add_argument("--home", type=Path, help="a TRAINFLOW_HOME with a champion")
    parser.add_argument(
        "--skip", nargs="+", default=[], metavar="CASE", help="substrings of cases to skip"
    )
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    source = workbook(args.scratch, args.rows)

    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average (1, 5, 15 min) at start: {load} on {os.cpu_count()} CPUs")
    print(f"workbook: {source} ({source.stat().st_size / 2**20:.0f} MB, {args.rows:,} rows)\n")
    print("| case | rows | wall s | work s | CPU s | peak MB | note |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for case in CONVERT:
        if any(skip in case for skip in args.skip):
            continue
        print(table_row(convert(case, source, args.scratch)), flush=True)
    if not any(skip in "trainflow predict energy" for skip in args.skip):
        with tempfile.TemporaryDirectory(prefix="excel-bench-") as temporary:
            home = args.home or Path(temporary) / "home"
            print(table_row(predict(source, args.rows, home, Path(temporary))), flush=True)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"\nload average at end: {load}; target for trainflow: <= {TARGET_SECONDS:.0f} s "
        f"and <= {TARGET_PEAK_MB} MB"
    )


if __name__ == "__main__":
    main()
