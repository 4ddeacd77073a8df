"""Which pairs a siamese run trains, calibrates and is tested on: the pair-seeding protocol.

From one seed: 10 % of the training images are held out (per class) to build validation
pairs, on which the distance threshold is calibrated; the test pairs are the course's pairs
of the test images. Training pairs are drawn by the input pipeline from the kept images only.
The flow and `benchmarks/siamese.py` both call `plan_pairs`, so they measure the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lib.core.atomic import atomic_path
from lib.core.faults import fault_point
from lib.siamese.idx import read_image_table
from lib.siamese.pairs import Pairs, course_pairs, split_indices, write_pairs

VALIDATION_FRACTION = 0.1
"""Share of training images held out to build validation pairs (threshold calibration too)."""


@dataclass(frozen=True)
class PairPlan:
    """Kept training images and the validation and test pairs of one seed."""

    kept: np.ndarray
    validation: Pairs
    test: Pairs


@dataclass(frozen=True)
class PairFiles:
    """A `PairPlan` as files: kept indices (`.npy`), validation and test pairs (Parquet)."""

    train_indices: Path
    validation: Path
    test: Path


def plan_pairs(train_labels: np.ndarray, test_labels: np.ndarray, seed: int) -> PairPlan:
    """Hold out validation images and build validation and test pairs, all from `seed`."""
    rng = np.random.default_rng(seed)
    kept, held_out = split_indices(train_labels, VALIDATION_FRACTION, rng)
    validation = course_pairs(train_labels, rng, indices=held_out)
    test = course_pairs(test_labels, np.random.default_rng(seed))
    return PairPlan(kept=kept, validation=validation, test=test)


def pair_files_for(
    train_table: Path, test_table: Path, seed: int, folder: Path, provenance: dict[str, Any]
) -> tuple[PairPlan, PairFiles]:
    """The pair step from stored image tables to stored pair files: read, plan, write."""
    _, train_labels = read_image_table(train_table)
    _, test_labels = read_image_table(test_table)
    plan = plan_pairs(train_labels, test_labels, seed)
    return plan, write_pair_plan(plan, folder, provenance)


def write_pair_plan(plan: PairPlan, folder: Path, provenance: dict[str, Any]) -> PairFiles:
    """Store the plan in `folder`, each file temp-then-rename, provenance in the Parquet."""
    files = PairFiles(
        train_indices=folder / "train-indices.npy",
        validation=folder / "validation.parquet",
        test=folder / "test.parquet",
    )
    write_pairs(plan.validation, files.validation, {**provenance, "part": "validation"})
    fault_point("pairs")
    write_pairs(plan.test, files.test, {**provenance, "part": "test"})
    with atomic_path(files.train_indices) as temporary:
        np.save(temporary, plan.kept)
    return files
