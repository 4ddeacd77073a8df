"""Two `trainflow run energy` processes at once on one state directory: the better candidate
is champion whichever finishes first, one version per distinct candidate, no lock errors.

The two candidates are trained once (module fixture); each race then points both processes at
a fresh registry, so what races is the part that must be serialised: reading the champion,
scoring it, deciding and moving the alias. `TRAINFLOW_RACES` sets the number of races (two
by default, one in each order of start; the issue's twenty with TRAINFLOW_RACES=20).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lib.core.registry import CHAMPION_ALIAS
from lib.energy.constants import MODEL_NAME
from tests.fixtures.cli_process import Finished, cli_env, finish, run_cli, start_cli

RACES = int(os.environ.get("TRAINFLOW_RACES", "2"))
HEAD_START_SECONDS = 2.0
# The default's epochs are 5 passes each: 40 passes against 5.
STRONG = ["run", "energy", "--seed", "0", "--epochs", "8"]
WEAK = ["run", "energy", "--seed", "1", "--epochs", "1"]
LOCK_ERRORS = ("database is locked", "Traceback")


@pytest.fixture(scope="module")
def trained(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A state directory whose cache holds both candidates, trained and evaluated."""
    root = tmp_path_factory.mktemp("race")
    places = {"home": root / "home", "prefect": root / "prefect", "mirror": shared_data}
    for args in (STRONG, WEAK):
        done = run_cli(args, _env(places, root / "warm.db"))
        assert done.returncode == 0, done.screen[-3000:]
    return places


def _env(places: dict[str, Path], registry: Path) -> dict[str, str]:
    return cli_env(
        places["home"],
        places["prefect"],
        TRAINFLOW_MIRROR=str(places["mirror"]),
        MLFLOW_TRACKING_URI=f"sqlite:///{registry}",
    )


def _race(
    places: dict[str, Path], registry: Path, first: list[str], second: list[str]
) -> list[Finished]:
    leader = start_cli(first, _env(places, registry))
    time.sleep(HEAD_START_SECONDS)
    follower = start_cli(second, _env(places, registry))
    return [finish(leader), finish(follower)]


@pytest.mark.slow
@pytest.mark.parametrize("race", range(RACES))
def test_the_better_candidate_is_champion_whoever_finishes_first(
    trained: dict[str, Path], tmp_path: Path, race: int
) -> None:
    registry = tmp_path / "mlflow.db"
    first, second = (STRONG, WEAK) if race % 2 == 0 else (WEAK, STRONG)

    finished = _race(trained, registry, first, second)

    for done in finished:
        assert done.returncode == 0, done.screen[-3000:]
        assert not [text for text in LOCK_ERRORS if text in done.screen], done.screen[-3000:]
    uri = f"sqlite:///{registry}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
    assert len(versions) == 2, [v.tags for v in versions]
    scores = {str(v.version): float(v.tags["metric.mean_rmse"]) for v in versions}
    best = min(scores, key=scores.__getitem__)
    champion = str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS).version)
    assert champion == best, scores
