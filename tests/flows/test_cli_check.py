"""`trainflow check`: new data against the champion's training data, from a user's shell.

The tests marked slow share one energy champion trained for the module (`trainflow run
energy --epochs 2`, enough for the tiny workbook to clear the floors); `check` then runs in
fresh processes against it: the same workbook (exit 0), a survey of only tall, fully glazed
buildings (exit 3, the moved columns named), a broken workbook (exit 1, one line). Each of
those `check` processes also reports whether it imported TensorFlow or Prefect: it must
start neither. A second run on the shifted workbook shows the drift in its report. The
siamese check runs against the champion of `tests/flows/test_siamese_flow.py`.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest

from tests.fixtures.cli_process import REPO_ROOT, Finished, cli_env, run_cli
from tests.fixtures.energy import write_energy_workbook
from tests.fixtures.fashion import synthetic_images, write_idx

# Runs `python -m flows.cli ARGS`, then writes which heavy packages it imported to REPORT.
RUNNER = (
    "import atexit, json, runpy, sys\n"
    "report = sys.argv.pop(1)\n"
    "atexit.register(lambda: open(report, 'w').write(json.dumps(\n"
    "    sorted(name for name in ('tensorflow', 'prefect') if name in sys.modules))))\n"
    "sys.argv[0] = 'trainflow'\n"
    "runpy.run_module('flows.cli', run_name='__main__', alter_sys=True)\n"
)
MOVED = ("X5", "X7", "X8", "Y1", "Y2")
"""What a survey of tall (7 m), fully glazed (0.4) buildings moves: height, glazing, its
distribution (never 0 with glazing) and both loads; compactness and orientation stay."""


@dataclass(frozen=True)
class Setup:
    folder: Path
    env: dict[str, str]
    same: Path
    shifted: Path
    first_run: Finished


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    folder = tmp_path_factory.mktemp("check")
    env = cli_env(folder / "home", folder / "prefect", TF_NUM_INTRAOP_THREADS="1")
    same = write_energy_workbook(folder / "survey.xlsx")
    shifted = write_energy_workbook(
        folder / "tall-glazed.xlsx", seed=5, heights=(7.0,), glazing_areas=(0.4,)
    )
    first = run_cli(["run", "energy", "--epochs", "2", "--source", str(same)], env)
    assert first.returncode == 0, first.screen
    return Setup(folder, env, same, shifted, first)


def check(setup: Setup, *args: str) -> tuple[Finished, list[str]]:
    """`trainflow check ARGS` in a fresh process; also what heavy packages it imported."""
    import subprocess

    report = setup.folder / "imported.json"
    report.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(report), "check", *args],
        cwd=REPO_ROOT,
        env=setup.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Finished(done.returncode, done.stdout, done.stderr), json.loads(report.read_text())


@pytest.mark.slow
def test_a_run_without_a_champion_says_drift_was_not_checked(champion: Setup) -> None:
    shown = " ".join(champion.first_run.stdout.split())  # the table may wrap the line
    assert "drift not checked: energy-efficiency has no champion yet: nothing to compare with" in (
        shown
    )


@pytest.mark.slow
def test_the_champions_own_workbook_does_not_drift(champion: Setup) -> None:
    done, imported = check(champion, "energy", str(champion.same))
    assert done.returncode == 0, done.screen
    assert done.stderr == "" and imported == []
    header, *rows, verdict = done.stdout.splitlines()
    assert header.split()[:3] == ["column", "reference", "mean"]
    assert [row.split()[0] for row in rows] == [*(f"X{i}" for i in range(1, 9)), "Y1", "Y2"]
    assert all(row.endswith("  no") for row in rows), done.stdout
    assert verdict.startswith(
        f"no drift: {champion.same} against energy-efficiency v1's training data (320 rows; "
    )


@pytest.mark.slow
def test_a_survey_of_tall_glazed_buildings_drifts_and_names_the_columns(champion: Setup) -> None:
    done, imported = check(champion, "energy", str(champion.shifted))
    assert done.returncode == 3, done.screen
    assert done.stderr == "" and imported == []
    *rows, verdict = done.stdout.splitlines()[1:]
    flagged = [row.split()[0] for row in rows if "DRIFT: PSI" in row]
    assert flagged == list(MOVED), done.stdout
    assert verdict.startswith(
        f"DRIFT: {champion.shifted} differs from energy-efficiency v1's training data "
        f"in {', '.join(MOVED)} (320 rows; "
    )


@pytest.mark.slow
def test_json_carries_the_same_verdict_for_a_machine(champion: Setup) -> None:
    done, _ = check(champion, "energy", str(champion.shifted), "--json")
    assert done.returncode == 3, done.screen
    document = json.loads(done.stdout)
    assert document["drifted"] is True and document["champion_version"] == "1"
    assert [c["name"] for c in document["columns"] if c["flagged"]] == list(MOVED)
    assert document["incoming_rows"] == 320


@pytest.mark.slow
def test_a_broken_workbook_is_one_line_and_exit_1(champion: Setup) -> None:
    broken = write_energy_workbook(champion.folder / "typo.xlsx", n_rows=60)
    book = openpyxl.load_workbook(broken)
    book.active["E7"] = "seven"  # X5, the height, on data row 7
    book.save(broken)
    done, imported = check(champion, "energy", str(broken))
    assert done.returncode == 1 and done.stdout == "", done.screen
    assert "Traceback" not in done.screen and imported == []
    first, *more = done.stderr.splitlines()
    assert first.startswith("trainflow: error: Invalid energy table in ") and "typo.xlsx" in first
    assert more == [
        "  column 'X5' (overall height, m): expected a number. Received: row 7 = 'seven'"
    ]


def test_without_a_champion_check_says_so(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", tmp_path / "prefect", untouched_home=True)
    done = run_cli(["check", "energy", str(write_energy_workbook(tmp_path / "a.xlsx"))], env)
    assert done.returncode == 1 and done.stdout == "", done.screen
    [line] = done.stderr.splitlines()
    assert line.startswith("trainflow: error: no 'champion' version of model 'energy-efficiency'")
    assert line.endswith("to compare with; run `trainflow run` first")
    assert not (tmp_path / "home").exists()  # a check creates no registry


def test_labels_out_of_range_are_one_line_before_any_registry(tmp_path: Path) -> None:
    images, labels = synthetic_images(per_class=2, seed=0)
    labels[3] = 12
    env = cli_env(tmp_path / "home", tmp_path / "prefect", untouched_home=True)
    given = [write_idx(tmp_path / "images.gz", images), write_idx(tmp_path / "labels.gz", labels)]
    done = run_cli(["check", "siamese", "--images", str(given[0]), "--labels", str(given[1])], env)
    assert done.returncode == 1 and done.stdout == "", done.screen
    [line] = done.stderr.splitlines()
    assert line.startswith(f"trainflow: error: {given[1]}") and "12" in line, line
    assert not (tmp_path / "home").exists()  # no registry was opened, nothing was written


@pytest.mark.slow
def test_a_run_on_drifted_data_reports_it_and_still_trains(champion: Setup) -> None:
    second = run_cli(["run", "energy", "--epochs", "2", "--source", str(champion.shifted)],
                     champion.env)  # fmt: skip
    assert second.returncode == 0, second.screen
    assert "drift against champion v1's training data: drift in X5, X7, X8, Y1, Y2" in (
        " ".join(second.stdout.split())  # the table may wrap the line
    )
    assert "energy-efficiency v2 (new version" in second.stdout  # trained and registered
    report = _latest_report(champion.folder / "prefect" / "prefect.db", "energy-report")
    assert "## Drift against the champion's training data" in report
    assert "**DRIFT** against champion v1's training data: drift in X5, X7, X8, Y1, Y2" in report
    assert "| X5 | " in report and "![drift](data:image/png;base64," in report
    assert "Drift does not stop training" in report


def _latest_report(database: Path, key: str) -> str:
    """The newest markdown artifact under `key`, read from the CLI's own Prefect database."""
    with sqlite3.connect(database) as connection:
        [(data,)] = connection.execute(
            "SELECT data FROM artifact WHERE key = ? ORDER BY created DESC LIMIT 1", (key,)
        ).fetchall()
    return str(json.loads(data))
