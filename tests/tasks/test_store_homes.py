"""Two machines, one store: a step cached on one home is a cache hit on another.

Each "machine" is a `TRAINFLOW_HOME` of its own; they share only the S3 store (SeaweedFS on
127.0.0.1). The first home is deleted before the second runs, so every file the second
needs can only come from the store.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from prefect import flow

from lib.core.refs import FileRef
from tasks.descriptors import SplitRef, TableRef
from tasks.download import ingest_source
from tasks.energy import excel_to_parquet, split
from tasks.storage import current_store, local_path
from tests.fixtures.energy import write_energy_workbook
from tests.fixtures.prefect_runs import task_states
from tests.fixtures.seaweedfs import S3Server, use_s3_store

pytestmark = pytest.mark.usefixtures("prefect_api")


@flow
def table_and_split(source: str, seed: int) -> tuple[TableRef, SplitRef]:
    table = excel_to_parquet(ingest_source(source))
    return table, split(table, seed)


@flow
def split_only(table: TableRef, seed: int) -> SplitRef:
    return split(table, seed)


def _run(source: str, seed: int) -> tuple[TableRef, SplitRef, set[str]]:
    state = table_and_split(source, seed, return_state=True)
    table, parts = state.result()
    return table, parts, set(task_states(state.state_details.flow_run_id).values())


def test_a_step_cached_on_one_home_is_a_cache_hit_on_another(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_s3_store(s3_server, tmp_path.name, monkeypatch)
    workbook = write_energy_workbook(tmp_path / "buildings.xlsx", n_rows=320)
    monkeypatch.setenv("TRAINFLOW_HOME", str(tmp_path / "a"))
    table, parts, states = _run(str(workbook), 4)
    assert states == {"Completed"}

    shutil.rmtree(tmp_path / "a")  # machine A is gone: nothing of it is on B's disk
    home_b = tmp_path / "b"
    monkeypatch.setenv("TRAINFLOW_HOME", str(home_b))
    table_b, parts_b, states_b = _run(str(workbook), 4)

    assert states_b == {"Cached"}
    # A's descriptors (`origin` is not stored), naming A's paths
    assert (table_b.model_dump(), parts_b) == (table.model_dump(), parts)
    assert not Path(table_b.table.path).exists()
    # B's next step reads A's table: fetched from the store into B's cache, hash checked.
    other = split_only(table_b, 5)
    fetched = home_b / "cache" / table.table.sha256 / "energy.parquet"
    assert FileRef.of(fetched).sha256 == table.table.sha256
    assert sum(other.sizes.values()) == 320 and other.sizes != parts.sizes
    fit_rows = parts.sizes["train"] + parts.sizes["validation"]  # what a version may learn from
    assert len(pq.read_table(local_path(parts_b.reference))) == fit_rows
    assert current_store().read_record("no-such-record") is None
