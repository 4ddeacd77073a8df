"""Deterministic splits: disjoint, covering, sorted, and reproducible from seed and data hash."""

from __future__ import annotations

import numpy as np
import pytest

from lib.energy.splits import split_rows, split_seed

DATA_HASH = "a" * 64
OTHER_HASH = "b" * 64
N_ROWS = 768  # the size of ENB2012


def test_parts_are_disjoint_sorted_and_cover_every_row() -> None:
    split = split_rows(N_ROWS, seed=0, data_sha256=DATA_HASH)
    parts = (split.train, split.validation, split.test)
    joined = np.concatenate(parts)
    np.testing.assert_array_equal(np.sort(joined), np.arange(N_ROWS))  # covering, no repeats
    for part in parts:
        assert np.all(np.diff(part) > 0)  # strictly increasing: sorted and unique
        assert part.dtype.kind == "i"


def test_part_sizes_follow_the_fractions() -> None:
    split = split_rows(
        100, seed=0, data_sha256=DATA_HASH, test_fraction=0.2, validation_fraction=0.1
    )
    assert (len(split.train), len(split.validation), len(split.test)) == (70, 10, 20)


def test_validation_may_be_empty_when_asked() -> None:
    split = split_rows(10, seed=0, data_sha256=DATA_HASH, validation_fraction=0.0)
    assert len(split.validation) == 0
    assert len(split.train) + len(split.test) == 10


def test_same_seed_and_hash_give_identical_splits() -> None:
    first = split_rows(N_ROWS, seed=42, data_sha256=DATA_HASH)
    second = split_rows(N_ROWS, seed=42, data_sha256=DATA_HASH)
    for a, b in zip(
        (first.train, first.validation, first.test),
        (second.train, second.validation, second.test),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("seed", "data_hash"), [(43, DATA_HASH), (42, OTHER_HASH)])
def test_a_different_seed_or_data_hash_gives_a_different_split(seed: int, data_hash: str) -> None:
    reference = split_rows(N_ROWS, seed=42, data_sha256=DATA_HASH)
    other = split_rows(N_ROWS, seed=seed, data_sha256=data_hash)
    assert not np.array_equal(reference.test, other.test)


def test_split_seed_mixes_both_inputs_into_a_64_bit_seed() -> None:
    seed = split_seed(42, DATA_HASH)
    assert seed == split_seed(42, DATA_HASH)
    assert 0 <= seed < 2**64
    assert len({seed, split_seed(43, DATA_HASH), split_seed(42, OTHER_HASH)}) == 3


@pytest.mark.parametrize(
    ("test_fraction", "validation_fraction"),
    [(0.0, 0.1), (1.0, 0.1), (-0.2, 0.1), (0.2, 1.0), (0.2, -0.1)],
)
def test_fractions_outside_their_range_are_rejected(
    test_fraction: float, validation_fraction: float
) -> None:
    with pytest.raises(
        ValueError,
        match=(
            rf"Expected 0 < test_fraction < 1.*Received: test_fraction={test_fraction}, "
            rf"validation_fraction={validation_fraction}"
        ),
    ):
        split_rows(
            100,
            seed=0,
            data_sha256=DATA_HASH,
            test_fraction=test_fraction,
            validation_fraction=validation_fraction,
        )


def test_fractions_that_leave_no_training_row_are_rejected() -> None:
    with pytest.raises(
        ValueError, match=r"enough rows.*n_rows=10 \(train -1, validation 5, test 6\)"
    ):
        split_rows(10, seed=0, data_sha256=DATA_HASH, test_fraction=0.6, validation_fraction=0.5)


@pytest.mark.parametrize("n_rows", [0, 1, 2])
def test_too_few_rows_are_rejected(n_rows: int) -> None:
    with pytest.raises(ValueError, match=rf"Expected enough rows.*n_rows={n_rows}"):
        split_rows(n_rows, seed=0, data_sha256=DATA_HASH)


def test_the_smallest_workable_table_splits() -> None:
    # 0.2 * 5 rounds to 1 row for test and for validation, leaving 3 training rows.
    split = split_rows(5, seed=0, data_sha256=DATA_HASH, test_fraction=0.2, validation_fraction=0.2)
    assert (len(split.train), len(split.validation), len(split.test)) == (3, 1, 1)
