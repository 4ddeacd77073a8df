"""Deterministic train/validation/test splits: the same data and seed give the same rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from lib.core.atomic import atomic_path
from lib.core.hashing import sha256_text
from lib.energy.constants import FEATURES, TARGETS


@dataclass(frozen=True)
class Split:
    """Row positions of each part, sorted, disjoint and covering every row."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def split_seed(seed: int, data_sha256: str) -> int:
    """Mix the user's seed with the data hash, so new data gets a fresh but reproducible split."""
    return int(sha256_text(str(seed), data_sha256)[:16], 16)


def split_rows(
    n_rows: int,
    *,
    seed: int,
    data_sha256: str,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.1,
) -> Split:
    """Shuffle rows with a generator seeded from `seed` and `data_sha256`, then cut in three.

    Raises:
        ValueError: when the fractions leave no training row, or a part would be empty.
    """
    if not (0 < test_fraction < 1 and 0 <= validation_fraction < 1):
        raise ValueError(
            "Expected 0 < test_fraction < 1 and 0 <= validation_fraction < 1. "
            f"Received: test_fraction={test_fraction}, validation_fraction={validation_fraction}"
        )
    n_test = round(n_rows * test_fraction)
    n_validation = round(n_rows * validation_fraction)
    n_train = n_rows - n_test - n_validation
    if n_test < 1 or n_train < 1 or (validation_fraction > 0 and n_validation < 1):
        raise ValueError(
            f"Expected enough rows for every part of the split. Received: n_rows={n_rows} "
            f"(train {n_train}, validation {n_validation}, test {n_test})"
        )
    order = np.random.default_rng(split_seed(seed, data_sha256)).permutation(n_rows)
    return Split(
        train=np.sort(order[:n_train]),
        validation=np.sort(order[n_train : n_train + n_validation]),
        test=np.sort(order[n_train + n_validation :]),
    )


PARTS = ("train", "validation", "test")


def write_split(split: Split, target: Path) -> dict[str, int]:
    """Store the row positions of each part as JSON (temp-then-rename); return part sizes."""
    content = {name: getattr(split, name).tolist() for name in PARTS}
    with atomic_path(target) as temporary:
        temporary.write_text(json.dumps(content))
    return {name: len(rows) for name, rows in content.items()}


def load_part(table: Path, split: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Features and targets (float32) of one part of a stored split of a stored table."""
    frame = pq.read_table(table).to_pandas()
    selected = frame.iloc[json.loads(Path(split).read_text())[part]]
    return (
        selected[list(FEATURES)].to_numpy(dtype="float32"),
        selected[list(TARGETS)].to_numpy(dtype="float32"),
    )
