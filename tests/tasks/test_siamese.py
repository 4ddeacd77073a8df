"""Siamese task adapters: IDX files to a table, then the pair files of one seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from prefect import flow

from lib.core.refs import FileRef
from lib.siamese.pairs import read_pairs
from tasks.descriptors import PairsRef, TableRef
from tasks.siamese import idx_to_parquet, make_pairs
from tests.fixtures.fashion import write_fashion_mirror

pytestmark = pytest.mark.usefixtures("prefect_api")


@flow
def tables_and_pairs(files: dict[str, FileRef], seed: int) -> tuple[TableRef, TableRef, PairsRef]:
    train = idx_to_parquet(
        files["train-images-idx3-ubyte.gz"], files["train-labels-idx1-ubyte.gz"], "train"
    )
    test = idx_to_parquet(
        files["t10k-images-idx3-ubyte.gz"], files["t10k-labels-idx1-ubyte.gz"], "test"
    )
    return train, test, make_pairs(train, test, seed)


def test_idx_files_become_tables_and_pair_files(trainflow_home: Path, tmp_path: Path) -> None:
    write_fashion_mirror(tmp_path / "mirror")
    folder = tmp_path / "mirror" / "fashion-mnist"
    files = {path.name: FileRef.of(path) for path in folder.iterdir()}

    train, test, pairs = tables_and_pairs(files, 2)

    assert (train.rows, test.rows) == (400, 120)
    kept = np.load(pairs.train_indices.path)
    validation = read_pairs(Path(pairs.validation.path))
    used = np.union1d(validation.left, validation.right)
    assert not np.isin(used, kept).any()  # validation pairs use held-out images only
    assert read_pairs(Path(pairs.test.path)).left.max() < test.rows
    assert pairs.seed == 2
