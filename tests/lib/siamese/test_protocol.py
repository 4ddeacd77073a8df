"""The pair-seeding protocol: a seed decides holdout, validation and test pairs, nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from lib.siamese.pairs import read_pairs
from lib.siamese.protocol import VALIDATION_FRACTION, plan_pairs, write_pair_plan

REPO_ROOT = Path(__file__).resolve().parents[3]
TRAIN_LABELS = np.repeat(np.arange(10), 20)
TEST_LABELS = np.repeat(np.arange(10), 6)


def test_a_seed_gives_the_same_plan_every_time() -> None:
    first, second = (
        plan_pairs(TRAIN_LABELS, TEST_LABELS, 3),
        plan_pairs(TRAIN_LABELS, TEST_LABELS, 3),
    )
    np.testing.assert_array_equal(first.kept, second.kept)
    np.testing.assert_array_equal(first.validation.left, second.validation.left)
    np.testing.assert_array_equal(first.test.right, second.test.right)


def test_validation_pairs_use_only_held_out_images() -> None:
    plan = plan_pairs(TRAIN_LABELS, TEST_LABELS, 0)
    held_out = np.setdiff1d(np.arange(len(TRAIN_LABELS)), plan.kept)
    assert len(held_out) == round(len(TRAIN_LABELS) * VALIDATION_FRACTION)
    used = np.union1d(plan.validation.left, plan.validation.right)
    assert np.isin(used, held_out).all()


def test_test_pairs_index_the_test_images_with_half_same_class() -> None:
    plan = plan_pairs(TRAIN_LABELS, TEST_LABELS, 0)
    assert plan.test.left.max() < len(TEST_LABELS) and plan.test.right.max() < len(TEST_LABELS)
    same = TEST_LABELS[plan.test.left] == TEST_LABELS[plan.test.right]
    np.testing.assert_array_equal(same.astype("uint8"), plan.test.label)
    assert plan.test.label.mean() == 0.5


def test_a_written_plan_reads_back(tmp_path: Path) -> None:
    plan = plan_pairs(TRAIN_LABELS, TEST_LABELS, 1)
    files = write_pair_plan(plan, tmp_path / "pairs", {"seed": 1})
    np.testing.assert_array_equal(np.load(files.train_indices), plan.kept)
    np.testing.assert_array_equal(read_pairs(files.test).left, plan.test.left)
    assert len(read_pairs(files.validation)) == len(plan.validation)


CHILD = """
import sys
from pathlib import Path
import numpy as np
from lib.siamese.protocol import plan_pairs, write_pair_plan
labels = np.repeat(np.arange(10), 20)
plan = plan_pairs(labels, np.repeat(np.arange(10), 6), 1)
write_pair_plan(plan, Path(sys.argv[1]), {"seed": 1})
print("written")
"""


def test_a_kill_while_writing_pairs_leaves_nothing_a_rerun_trips_on(tmp_path: Path) -> None:
    folder = tmp_path / "pairs"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TRAINFLOW_FAULT": "pairs"}
    killed = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)], env=env, capture_output=True, check=False
    )
    assert killed.returncode == -signal.SIGKILL
    assert not (folder / "test.parquet").exists()  # never half a set of pair files in place

    env.pop("TRAINFLOW_FAULT")
    again = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert again.stdout.strip() == "written"
    plan = plan_pairs(TRAIN_LABELS, TEST_LABELS, 1)
    np.testing.assert_array_equal(read_pairs(folder / "test.parquet").left, plan.test.left)
