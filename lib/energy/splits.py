"""Train/validation/test rows of the energy table: test rows fixed by content, not by seed.

A row is a test row when the hash of its content falls in the lowest `TEST_FRACTION` of the
hash space. So every seed, and every retrain on a grown workbook, scores on the same test
rows plus the new rows' share; a duplicate row lands in the same part as its twin; and the
champion and a candidate are compared on rows neither trained on. The seed only decides
which of the other rows validate, again by a hash (of the seed and the row), so duplicates
stay together there too. Part sizes follow the fractions on average, not exactly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from lib.core.atomic import atomic_path
from lib.core.errors import InputError
from lib.core.faults import fault_point
from lib.core.provenance import write_frame
from lib.energy.constants import FEATURES, TARGETS

TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
"""Shares of all rows, on average; validation rows come out of the non-test rows."""
_HASH_SPACE = 2.0**64


class SplitError(InputError):
    """The table cannot be split into non-empty training and test parts."""


@dataclass(frozen=True)
class Split:
    """Row positions of each part, sorted, disjoint and covering every row."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def row_keys(rows: np.ndarray, salt: str = "") -> np.ndarray:
    """A uint64 per row from sha256 of `salt` and the row's values as float64.

    Equal rows get equal keys; the value is uniform over [0, 2**64), so comparing it with a
    fraction of the space draws a row into a part with that probability.
    """
    values = np.ascontiguousarray(np.asarray(rows, dtype="<f8"))
    prefix = salt.encode()
    return np.array(
        [
            int.from_bytes(hashlib.sha256(prefix + row.tobytes()).digest()[:8], "big")
            for row in values
        ],
        dtype=np.uint64,
    )


def split_rows(
    rows: np.ndarray,
    *,
    seed: int,
    test_fraction: float = TEST_FRACTION,
    validation_fraction: float = VALIDATION_FRACTION,
) -> Split:
    """Split `rows` (one per table row, features and targets) into the three parts.

    Raises:
        ValueError: when a fraction is out of range.
        SplitError: when no row falls in the training part or in the test part.
    """
    if not (0 < test_fraction < 1 and 0 <= validation_fraction < 1 - test_fraction):
        raise ValueError(
            "Expected 0 < test_fraction < 1 and 0 <= validation_fraction < 1 - test_fraction. "
            f"Received: test_fraction={test_fraction}, validation_fraction={validation_fraction}"
        )
    test = row_keys(rows) < np.uint64(test_fraction * _HASH_SPACE)
    share = validation_fraction / (1 - test_fraction)
    validation = ~test & (row_keys(rows, salt=f"seed {seed}") < np.uint64(share * _HASH_SPACE))
    train = ~test & ~validation
    if not train.any() or not test.any():
        raise SplitError(
            f"Expected rows enough for a training and a test part. Received: {len(rows)} rows "
            f"({int(train.sum())} training, {int(test.sum())} test; a row is a test row with "
            f"probability {test_fraction:g}, by its content)"
        )
    return Split(
        train=np.flatnonzero(train),
        validation=np.flatnonzero(validation),
        test=np.flatnonzero(test),
    )


def table_rows(table: Path) -> np.ndarray:
    """Features and targets of every row of a stored energy table, as float64."""
    frame = pq.read_table(table, columns=[*FEATURES, *TARGETS]).to_pandas()
    return frame.to_numpy(dtype="float64")


PARTS = ("train", "validation", "test")


def write_split(split: Split, target: Path) -> dict[str, int]:
    """Store the row positions of each part as JSON (temp-then-rename); return part sizes."""
    content = {name: getattr(split, name).tolist() for name in PARTS}
    with atomic_path(target) as temporary:
        temporary.write_text(json.dumps(content))
        fault_point("split")
    return {name: len(rows) for name, rows in content.items()}


def load_part(table: Path, split: Path, *parts: str) -> tuple[np.ndarray, np.ndarray]:
    """Features and targets (float32) of the named parts of a stored split, in row order."""
    selected = _part_rows(pq.read_table(table).to_pandas(), split, parts)
    return (
        selected[list(FEATURES)].to_numpy(dtype="float32"),
        selected[list(TARGETS)].to_numpy(dtype="float32"),
    )


def _part_rows(frame: pd.DataFrame, split: Path, parts: tuple[str, ...]) -> pd.DataFrame:
    """The rows of `frame` in the named parts of the stored split `split`, in row order."""
    stored = json.loads(Path(split).read_text())
    positions = sorted(position for part in parts for position in stored[part])
    return frame.iloc[positions].reset_index(drop=True)


def write_part_table(table: Path, split: Path, target: Path, *parts: str) -> int:
    """Store the features and targets of the named parts as their own Parquet table.

    The rows a version may have learned from (training and validation) travel with every
    registered version (`lib.core.registry`'s reference artifact): what serving checks
    inputs against and drift checks compare new data with, wherever the version is loaded,
    with no access to this machine's store. Returns the number of rows.
    """
    frame = pq.read_table(table, columns=[*FEATURES, *TARGETS]).to_pandas()
    selected = _part_rows(frame, split, parts)
    write_frame(selected, target)
    return len(selected)
