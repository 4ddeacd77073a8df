"""Two machines, one S3 store, the real CLI: the second machine's run is all cache hits.

Each machine is a `trainflow run` process with its own `TRAINFLOW_HOME` and `PREFECT_HOME`;
they share only the store (SeaweedFS on 127.0.0.1). The first home is deleted before the
second run, so every file the second needs (the model it registers, above all) comes from
the store.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from lib.core.refs import FileRef
from tests.fixtures.cli_process import cli_env, run_cli
from tests.fixtures.energy import write_energy_workbook
from tests.fixtures.seaweedfs import S3Server

TASK_STATE = re.compile(r"Task run '([^']+)' - Finished in state (\w+)")
STEPS = ("ingest", "excel-to-parquet", "split-energy", "train-energy", "evaluate-energy")


def _states(stderr: str) -> dict[str, str]:
    """Task run name prefix -> the state Prefect's log says it finished in."""
    found = dict(TASK_STATE.findall(stderr))
    return {step: state for name, state in found.items() for step in STEPS if name.startswith(step)}


@pytest.mark.slow
def test_a_run_on_another_home_sharing_the_store_is_cached_and_registers_from_it(
    s3_server: S3Server, tmp_path: Path
) -> None:
    workbook = write_energy_workbook(tmp_path / "buildings.xlsx", n_rows=320)
    shared = {
        **s3_server.env(),
        "TRAINFLOW_STORE": s3_server.store(tmp_path.name),
        "TF_NUM_INTRAOP_THREADS": "1",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    args = ["run", "energy", "--source", str(workbook), "--epochs", "2", "--json"]

    first = run_cli(args, cli_env(tmp_path / "a", tmp_path / "prefect-a", **shared))
    assert first.returncode == 0, first.screen[-3000:]
    assert set(_states(first.stderr).values()) == {"Completed"}
    shutil.rmtree(tmp_path / "a")  # machine A is gone

    home_b = tmp_path / "b"
    second = run_cli(args, cli_env(home_b, tmp_path / "prefect-b", **shared))

    assert second.returncode == 0, second.screen[-3000:]
    assert _states(second.stderr) == dict.fromkeys(STEPS, "Cached")
    [summary], [before] = json.loads(second.stdout), json.loads(first.stdout)
    assert summary["error"] is None and summary["metrics"] == before["metrics"]
    # B's registry is its own: the cached model, fetched from the store, is its version 1.
    assert summary["version"] == "1" and summary["newly_registered"]
    [model] = (home_b / "cache").rglob("model.keras")
    assert FileRef.of(model).sha256 == model.parent.name
    assert not (home_b / "models").exists()  # nothing was trained on B


@pytest.mark.slow
def test_a_store_that_cannot_be_reached_ends_the_run_in_one_line(tmp_path: Path) -> None:
    workbook = write_energy_workbook(tmp_path / "buildings.xlsx", n_rows=320)
    env = cli_env(
        tmp_path / "home",
        tmp_path / "prefect",
        TRAINFLOW_STORE="s3://trainflow/team",
        AWS_ENDPOINT_URL_S3="http://127.0.0.1:9",  # nothing listens there
        AWS_ACCESS_KEY_ID="key",
        AWS_SECRET_ACCESS_KEY="secret",
    )

    done = run_cli(["run", "energy", "--source", str(workbook), "--epochs", "1"], env)

    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines()[-1] == (
        "trainflow: error: store s3://trainflow/team: cannot reach http://127.0.0.1:9"
    )
    assert "Traceback" not in done.screen
    assert not (tmp_path / "home" / "data").exists()  # no step ran
