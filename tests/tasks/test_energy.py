"""Energy task adapters: descriptors in and out, content-addressed outputs, named steps."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from prefect import flow

from lib.core.refs import FileRef
from tasks.descriptors import SplitRef, TableRef
from tasks.energy import SPLIT_STEP, TABLE_STEP, TRAIN_STEP, excel_to_parquet, split
from tests.fixtures.energy import write_energy_workbook

pytestmark = pytest.mark.usefixtures("prefect_api")


@flow
def table_and_split(raw: FileRef, seed: int) -> tuple[TableRef, SplitRef]:
    table = excel_to_parquet(raw)
    return table, split(table, seed)


def test_the_workbook_becomes_a_table_and_a_split_of_its_rows(
    trainflow_home: Path, tmp_path: Path
) -> None:
    raw = FileRef.of(write_energy_workbook(tmp_path / "buildings.xlsx", n_rows=320))

    table, parts = table_and_split(raw, 4)

    assert table.rows == 320 and table.source == raw
    assert Path(table.table.path).is_relative_to(trainflow_home.resolve() / "data" / "energy")
    stored = json.loads(Path(parts.split.path).read_text())
    assert {name: len(rows) for name, rows in stored.items()} == parts.sizes
    assert sum(parts.sizes.values()) == 320 and parts.seed == 4
    # The reference holds every row a version may learn from (`fit_rows="non-test"`).
    fit_rows = parts.sizes["train"] + parts.sizes["validation"]
    assert len(pq.read_table(parts.reference.path)) == fit_rows


def test_every_task_names_a_lib_module_that_exists() -> None:
    from lib.core.code_version import import_closure

    for step in (TABLE_STEP, SPLIT_STEP, TRAIN_STEP):
        assert step in import_closure(step)
