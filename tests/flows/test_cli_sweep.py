"""`trainflow sweep`: trials on two Dask worker processes, the best on validation registered.

The real CLI in a child process, as a user starts it, on a synthetic workbook given as
`--source` (no network). The slow run sweeps 2 seeds x 2 epochs on a 2-process local
cluster, then again with a second, diverging learning rate: only the new trials train, and
the diverged ones are passed over.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lib.energy.constants import MODEL_NAME
from tests.fixtures.cli_process import Finished, cli_env, run_cli
from tests.fixtures.energy import write_energy_workbook

SESSION_ONLY = ("PREFECT_LOGGING_LEVEL", "TF_CPP_MIN_LOG_LEVEL", "TRAINFLOW_VERBOSE")
ROWS = 320  # a test split of at least 50 rows, as the gate asks before it promotes
DIVERGING_RATE = 1000  # AdamW at this rate overflows the weights: the model predicts NaN
TRIAL_ROW = re.compile(
    r"^(\d)\s+seed (\d), epochs=2\s+(\d+\.\d{4})\s+worker (\d+) pid (\d+)(\s+winner)?$"
)


@dataclass(frozen=True)
class Sweeps:
    first: Finished
    again: Finished
    home: Path


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> Sweeps:
    root = tmp_path_factory.mktemp("sweep")
    workbook = write_energy_workbook(root / "buildings.xlsx", n_rows=ROWS)
    env = cli_env(root / "home", root / "prefect", TF_NUM_INTRAOP_THREADS="1")
    for key in SESSION_ONLY:  # the log a user sees: Prefect's INFO lines, TensorFlow's own level
        env.pop(key, None)
    args = ["sweep", "energy", "--seeds", "0-1", "--set", "epochs=2", "--workers", "2"]
    first = run_cli([*args, "--source", str(workbook)], env)
    # The same trials (0.01 is the default's rate) and, per seed, one whose rate diverges.
    grown = [*args, "--set", f"learning_rate=0.01,{DIVERGING_RATE}"]
    again = run_cli([*grown, "--source", str(workbook), "--json"], env)
    return Sweeps(first, again, root / "home")


@pytest.mark.slow
def test_two_trials_on_two_workers_and_the_best_on_validation_registered(sweeps: Sweeps) -> None:
    done = sweeps.first
    assert done.returncode == 0, done.screen[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines[0] == "energy sweep: 2 trials, 2 trained, 0 cached"
    assert lines[1].split() == ["#", "trial", "val", "mean_rmse", "ran", "on"]
    rows = [TRIAL_ROW.match(line) for line in lines[3:5]]
    assert all(rows), lines[3:5]
    found = [row.groups() for row in rows if row]
    assert [(index, seed) for index, seed, *_ in found] == [("0", "0"), ("1", "1")]
    assert len({worker for *_, worker, _, _ in found}) == 2  # two Dask workers ...
    assert len({pid for *_, pid, _ in found}) == 2  # ... in two processes
    scores = [float(score) for _, _, score, *_ in found]
    winner = scores.index(min(scores))
    assert [bool(mark) for *_, mark in found] == [i == winner for i in range(2)]
    assert lines[5] == f"winner: trial {winner} (lower validation mean_rmse is better)"
    assert lines[6].startswith("ran on a local Dask cluster of 2 worker processes (started in")
    assert "energy: energy-efficiency v1 (new version, champion)" in lines
    assert lines[-1].endswith("/#/models/energy-efficiency/versions/1")
    assert "Traceback" not in done.screen
    assert "oneDNN custom operations" not in done.screen  # the workers' TensorFlow banner

    uri = f"sqlite:///{sweeps.home / 'mlflow.db'}"
    registry = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = registry.get_model_version_by_alias(MODEL_NAME, "champion")
    assert str(champion.version) == "1"
    params = registry.get_run(champion.run_id).data.params
    assert (params["seed"], params["epochs"]) == (str(winner), "2")


@pytest.mark.slow
def test_a_grown_rerun_trains_only_new_trials_and_passes_over_diverged_ones(
    sweeps: Sweeps,
) -> None:
    done = sweeps.again
    assert done.returncode == 0, done.screen[-3000:]
    assert "Traceback" not in done.screen
    summary = json.loads(done.stdout)
    trials = summary["trials"]
    assert [(t["seed"], t["values"]["learning_rate"]) for t in trials] == [
        (0, 0.01),
        (0, DIVERGING_RATE),
        (1, 0.01),
        (1, DIVERGING_RATE),
    ]
    # The first run's trials are cache hits; only the new rate trains.
    assert [trial["trained"] for trial in trials] == [False, True, False, True]
    trains = re.findall(
        r"Task run 'train-energy-default-seed\d' - Finished in state (\w+)", done.stderr
    )
    assert sorted(trains) == ["Cached", "Cached", "Completed", "Completed"]
    assert len({trial["pid"] for trial in trials}) == 2
    # A diverged trial scores null (NaN) and is passed over; the winner is the first run's.
    scores = [trial["validation"]["metrics"]["mean_rmse"] for trial in trials]
    assert scores[1] is None and scores[3] is None
    assert summary["winner"] == (0 if scores[0] <= scores[2] else 2)
    assert summary["run"]["version"] == "1" and not summary["run"]["newly_registered"]
    assert summary["score"] == "mean_rmse" and summary["lower_is_better"] is True


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--set", "learnin_rate=0.1"],
            "trainflow: error: --set learnin_rate=0.1: the recipe has no field 'learnin_rate'; "
            "it has one_hot, ",
        ),
        (["--seeds", "7-0"], "trainflow: error: --seeds 7-0: a range runs upwards, 0-7 not 7-0"),
        (
            ["--set", "fit_rows=train,non-test"],
            "trainflow: error: --set fit_rows: a sweep picks its winner on the validation rows, "
            "so its trials fit on the training rows only (fit_rows=train)\n",
        ),
        (["--workers", "0"], "trainflow: error: Invalid option --workers 0: input should be"),
    ],
)
def test_a_bad_grid_is_one_line_before_anything_starts(
    tmp_path: Path, args: list[str], error: str
) -> None:
    env = cli_env(tmp_path / "home", tmp_path / "prefect", untouched_home=True)
    done = run_cli(["sweep", "energy", *args], env)

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(error), done.stderr
    assert not (tmp_path / "home").exists()  # nothing trained, downloaded or registered


def test_a_sweep_of_the_energy_default_fits_its_trials_on_the_training_rows() -> None:
    from flows.sweep import SweepParameters, plan
    from lib.energy.recipes import PRESETS

    trials = plan(SweepParameters(pipeline="energy", seeds="0-1", values=("epochs=3",)))

    # Run on its own the default fits every non-test row; a trial's validation rows pick
    # the winner, so they must stay out of its fit.
    assert PRESETS["default"].fit_rows == "non-test"
    assert [(t.seed, t.recipe.fit_rows, t.recipe.epochs) for t in trials] == [
        (0, "train", 3),
        (1, "train", 3),
    ]
