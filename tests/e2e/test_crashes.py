"""Kill -9 at every step of an energy run, then the same command again: it finishes as if
nothing happened, resuming training from its last finished epoch.

One state directory lives through the whole sequence, as on a server whose process keeps
dying: each run is killed at the next fault point (`lib.core.faults`), and the next run must
get past the previous run's crash before it meets its own. The last run has no fault.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lib.core.hygiene import remove_stale_leftovers
from lib.core.registry import CHAMPION_ALIAS, DECISION_TAG, REASON_TAG
from lib.energy.constants import MODEL_NAME
from tests.fixtures.cli_process import cli_env, run_cli

EPOCHS = 4  # of the default's 5 passes each; the run is killed at epoch 3 once
FAULTS = ("download", "parquet", "split", "epoch:3", "evaluate", "registered")
RUN = ["run", "energy", "--epochs", str(EPOCHS)]
DAY = 24 * 3600


@pytest.mark.slow
def test_a_run_killed_at_every_step_finishes_whole(shared_data: Path, tmp_path: Path) -> None:
    home, prefect_home = tmp_path / "home", tmp_path / "prefect"
    for fault in FAULTS:
        killed = run_cli(
            RUN,
            cli_env(home, prefect_home, TRAINFLOW_MIRROR=str(shared_data), TRAINFLOW_FAULT=fault),
        )
        assert killed.returncode == -signal.SIGKILL, (fault, killed.screen[-2000:])

    done = run_cli(RUN, cli_env(home, prefect_home, TRAINFLOW_MIRROR=str(shared_data)))

    assert done.returncode == 0, done.screen[-3000:]
    assert "energy-efficiency v1 (new version, champion)" in done.stdout
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
    assert [str(v.version) for v in versions] == ["1"]
    assert str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS).version) == "1"
    tags = client.get_model_version(MODEL_NAME, "1").tags
    assert tags[DECISION_TAG] == "promoted" and tags[REASON_TAG].startswith("no champion yet")
    assert {"metric.Y1_rmse", "data.table_sha256"} <= set(tags)
    # The learning curves cover every epoch, those before the kill at epoch 3 too.
    run_id = versions[0].run_id
    assert len(client.get_metric_history(run_id, "epoch_loss")) == EPOCHS
    assert client.get_run(run_id).info.status == "FINISHED"
    experiment = client.get_experiment_by_name("energy")
    assert experiment is not None
    running = client.search_runs(
        [experiment.experiment_id], filter_string="attributes.status = 'RUNNING'"
    )
    assert running == []
    # The temporaries the killed writers left never stood in for a file, and go a day later.
    leftovers = sorted(path.name.split(".")[1] for path in home.rglob(".*.tmp*"))
    assert leftovers == ["energy", "split"], leftovers
    assert [path.name for path in remove_stale_leftovers(home, now=time.time() + 2 * DAY)]
    assert not list(home.rglob(".*.tmp*"))
