"""What `trainflow run` shows: a few epoch lines, a bar on a terminal, a summary at the end.

Each run is the real CLI in a fresh process with Prefect's default logging (the test
session's quieter PREFECT_LOGGING_LEVEL and TF_CPP_MIN_LOG_LEVEL removed), stdout and
stderr kept apart. The slow runs share one module-wide home: the plain run trains, the
`--json` run after it finds every step cached, the `--quiet` one trains another seed. They
train the `course` preset, a fifteenth of the default's work an epoch: what they check is
what is printed, which is the same for every preset (the terminal run trains the default).
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lib.energy.constants import MODEL_NAME
from tests.fixtures.cli_process import REPO_ROOT, Finished, cli_env, run_cli
from tests.fixtures.energy import write_energy_workbook

EPOCHS = "20"
COURSE = ("--preset", "course")
ROWS = 320  # a test split of at least 50 rows, as the gate asks before it promotes
SESSION_ONLY = ("PREFECT_LOGGING_LEVEL", "TF_CPP_MIN_LOG_LEVEL", "TRAINFLOW_VERBOSE")
BANNER = (
    "oneDNN custom operations",
    "Could not find cuda drivers",
    "failed call to cuInit",
    "All log messages before absl::InitializeLog()",
    "This TensorFlow binary is optimized",
)
EPOCH_LINE = re.compile(r"\bepoch (\d+)/(\d+)\b", re.IGNORECASE)  # Keras' "Epoch 3/20" too
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BAR = r"energy [━╸╺]+"
SUMMARY_KEYS = {
    "pipeline", "error", "model", "version", "version_url", "promoted", "newly_registered",
    "reason", "metrics", "champion_metrics", "champion_version", "epochs", "train_seconds",
    "drift",
}  # fmt: skip
TERMINAL_SECONDS = 600


@dataclass(frozen=True)
class Place:
    """Where the module's runs happen: a workbook and the environment of a user's shell."""

    workbook: Path
    home: Path
    env: dict[str, str]

    def run(self, *args: str) -> Finished:
        return run_cli(["run", "energy", "--source", str(self.workbook), *args], self.env)


def _place(root: Path, *, new_registry: bool = False) -> Place:
    """`new_registry`: a home without a registry, as on a user's first run."""
    workbook = write_energy_workbook(root / "buildings.xlsx", n_rows=ROWS)
    env = cli_env(
        root / "home", root / "prefect", untouched_home=new_registry, TF_NUM_INTRAOP_THREADS="1"
    )
    for key in SESSION_ONLY:
        env.pop(key, None)
    return Place(workbook, root / "home", env)


@dataclass(frozen=True)
class Runs:
    plain: Finished
    json: Finished
    quiet: Finished
    home: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    # The plain run creates the registry: MLflow's notes on it must not reach the screen.
    place = _place(tmp_path_factory.mktemp("terminal"), new_registry=True)
    plain = place.run(*COURSE, "--epochs", EPOCHS)
    as_json = place.run(*COURSE, "--epochs", EPOCHS, "--json")
    quiet = place.run(*COURSE, "--epochs", "3", "--seed", "1", "--quiet")
    return Runs(plain, as_json, quiet, place.home)


def _summary_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.strip()]


@pytest.mark.slow
def test_a_plain_run_logs_about_a_line_per_tenth_of_the_epochs(runs: Runs) -> None:
    assert runs.plain.returncode == 0, runs.plain.screen[-3000:]
    epoch_lines = [line for line in runs.plain.screen.splitlines() if EPOCH_LINE.search(line)]
    assert [EPOCH_LINE.search(line).group(1) for line in epoch_lines] == [  # type: ignore[union-attr]
        "1", "2", "4", "6", "8", "10", "12", "14", "16", "18", "20",
    ]  # fmt: skip
    assert all("Task run 'train-energy-course-seed0'" in line for line in epoch_lines)
    assert "\r" not in runs.plain.screen  # stderr is a file here: no bar, no redraws
    assert not any(banner in runs.plain.screen for banner in BANNER)
    assert "Creating initial MLflow database tables" not in runs.plain.stderr


@pytest.mark.slow
def test_a_plain_run_ends_with_a_summary_table_in_80_columns(runs: Runs) -> None:
    lines = _summary_lines(runs.plain.stdout)
    assert lines[0] == "energy: energy-efficiency v1 (new version, champion)"
    assert lines[1].split() == ["test", "metric", "v1"]
    metrics = dict(line.split() for line in lines[3:10])
    assert list(metrics) == [f"Y{n}_{m}" for n in (1, 2) for m in ("rmse", "mae", "r2")] + [
        "mean_rmse"
    ]
    assert all(re.fullmatch(r"-?\d+\.\d{4}", value) for value in metrics.values())
    details = lines[10:]
    assert details[0].startswith("decision  no champion yet")
    [trained] = [line for line in details if line.startswith("trained ")]
    assert trained == f"trained   {EPOCHS} epochs in " + trained.split(" in ")[1]
    drift = " ".join(" ".join(details[details.index(trained) + 1 : -1]).split())
    assert (
        drift == "drift not checked: energy-efficiency has no champion yet: nothing to compare with"
    )
    assert details[-1] == "MLflow    http://127.0.0.1:5000/#/models/energy-efficiency/versions/1"
    assert max(len(line) for line in lines) <= 80
    assert all(line == line.rstrip() for line in runs.plain.stdout.splitlines())
    assert len(details) <= 7  # the reason and the drift may wrap


@pytest.mark.slow
def test_json_prints_one_document_on_stdout_and_the_log_on_stderr(runs: Runs) -> None:
    assert runs.json.returncode == 0, runs.json.screen[-3000:]
    [summary] = json.loads(runs.json.stdout)
    assert set(summary) == SUMMARY_KEYS
    assert summary["pipeline"] == "energy" and summary["error"] is None
    assert summary["model"] == MODEL_NAME and summary["version"] == "1"
    assert not summary["newly_registered"] and summary["reason"].startswith("nothing changed")
    assert summary["champion_version"] == "1" and summary["epochs"] == int(EPOCHS)
    assert summary["version_url"].endswith("/#/models/energy-efficiency/versions/1")
    assert set(summary["metrics"]) >= {"Y1_rmse", "Y2_rmse", "mean_rmse"}
    assert "Finished in state Cached" in runs.json.stderr  # Prefect's log: on stderr


@pytest.mark.slow
def test_quiet_prints_only_the_summary(runs: Runs) -> None:
    assert runs.quiet.returncode == 0, runs.quiet.screen[-3000:]
    assert runs.quiet.stderr == ""  # no Prefect log, no MLflow "Created version '2'"
    lines = _summary_lines(runs.quiet.stdout)
    assert lines[0] == "energy: energy-efficiency v2 (new version, not promoted)"
    assert lines[1].split() == ["test", "metric", "v2", "champion", "v1"]
    assert lines[-1].endswith("/#/models/energy-efficiency/versions/2")
    uri = f"sqlite:///{runs.home / 'mlflow.db'}"
    registry = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert len(registry.search_model_versions(f"name = '{MODEL_NAME}'")) == 2


def _on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run the CLI with stderr on an 80-column pseudo-terminal; exit code, stdout, terminal."""
    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    shown = b"".join(_read_until_closed(leader))
    stdout, _ = process.communicate(timeout=TERMINAL_SECONDS)
    os.close(leader)
    return process.returncode, stdout.decode(), shown.decode(errors="replace")


def _read_until_closed(leader: int) -> Iterator[bytes]:
    while select.select([leader], [], [], TERMINAL_SECONDS)[0]:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the last writer closed the terminal
            return
        if not chunk:
            return
        yield chunk


@pytest.mark.slow
def test_on_a_terminal_a_bar_moves_under_whole_log_lines(tmp_path: Path) -> None:
    place = _place(tmp_path)
    code, stdout, shown = _on_a_terminal(
        ["run", "energy", "--source", str(place.workbook), "--epochs", EPOCHS], place.env
    )

    assert code == 0, shown[-3000:]
    assert "energy: energy-efficiency v1 (new version, champion)" in stdout
    pieces = [p for p in re.split(r"[\r\n]", CONTROL.sub("", shown)) if p.strip()]
    bars = [p for p in pieces if re.match(BAR, p)]
    assert re.fullmatch(BAR + r" epoch 20/20  loss \S+  val_loss \S+  ETA \d\d:\d\d", bars[-1])
    drawn = {p.split(" epoch ")[1].split()[0] for p in bars}  # redrawn twice a second
    assert {"1/20", "20/20"} <= drawn and len(drawn) >= 3
    assert max(len(p) for p in bars) <= 80
    logged = [p for p in pieces if EPOCH_LINE.search(p) and not re.match(BAR, p)]
    assert len(logged) == 11
    assert all(re.match(r"\d\d:\d\d:\d\d\.\d{3} \| INFO    \| Task run ", p) for p in logged)


def test_json_lists_each_failed_pipeline_with_its_error(tmp_path: Path) -> None:
    place = _place(tmp_path)
    done = run_cli(["run", "all", "--epochs", "0", "--json"], place.env)

    assert done.returncode == 1
    said = "Invalid option --epochs 0: input should be greater than 0"
    assert json.loads(done.stdout) == [
        {"pipeline": "energy", "error": said},
        {"pipeline": "siamese", "error": said},
    ]
    assert done.stderr.splitlines() == [
        f"trainflow: error: energy: {said}",
        f"trainflow: error: siamese: {said}",
    ]


def test_quiet_still_says_why_a_run_failed_in_one_line(tmp_path: Path) -> None:
    place = _place(tmp_path, new_registry=True)
    done = run_cli(["run", "siamese", "--source", str(place.workbook), "--quiet"], place.env)

    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "trainflow: error: --source is for `run energy` (your own workbook); siamese takes none"
    ]
    assert not place.home.exists()
