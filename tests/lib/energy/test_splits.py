"""Energy splits: test rows fixed by content for every seed; the seed only moves validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lib.energy.splits import (
    TEST_FRACTION,
    SplitError,
    load_part,
    row_keys,
    split_rows,
    write_split,
)

# Distinct rows, so that sizes measure the hash draw, not duplicates travelling together.
ROWS = np.random.default_rng(0).normal(size=(2_000, 10))


def test_parts_are_disjoint_sorted_and_cover_every_row() -> None:
    parts = split_rows(ROWS, seed=0)
    everything = np.concatenate([parts.train, parts.validation, parts.test])
    assert sorted(everything.tolist()) == list(range(len(ROWS)))
    for part in (parts.train, parts.validation, parts.test):
        assert np.all(np.diff(part) > 0)


def test_part_sizes_follow_the_fractions_on_average() -> None:
    parts = split_rows(ROWS, seed=0)
    assert len(parts.test) / len(ROWS) == pytest.approx(TEST_FRACTION, abs=0.03)
    assert len(parts.validation) / len(ROWS) == pytest.approx(0.1, abs=0.03)


def test_every_seed_scores_on_the_same_test_rows() -> None:
    first, second = split_rows(ROWS, seed=0), split_rows(ROWS, seed=7)
    np.testing.assert_array_equal(first.test, second.test)
    assert not np.array_equal(first.validation, second.validation)


def test_the_same_seed_gives_the_same_split() -> None:
    first, second = split_rows(ROWS, seed=3), split_rows(ROWS, seed=3)
    for name in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))


def test_a_grown_table_keeps_its_test_rows_and_adds_the_new_rows_share() -> None:
    old, grown = ROWS[:1_500], ROWS
    old_test = split_rows(old, seed=0).test
    grown_test = split_rows(grown, seed=0).test
    np.testing.assert_array_equal(grown_test[grown_test < 1_500], old_test)
    assert 0 < np.sum(grown_test >= 1_500) < 500


def test_reordered_rows_keep_their_part() -> None:
    order = np.random.default_rng(0).permutation(len(ROWS))
    test_rows = {tuple(row) for row in ROWS[split_rows(ROWS, seed=0).test]}
    shuffled = ROWS[order]
    assert {tuple(row) for row in shuffled[split_rows(shuffled, seed=0).test]} == test_rows


def test_duplicate_rows_fall_in_the_same_part() -> None:
    doubled = np.concatenate([ROWS[:300], ROWS[:300]])
    parts = split_rows(doubled, seed=4)
    for part in (parts.train, parts.validation, parts.test):
        members = set(part.tolist())
        assert all((i in members) == (i + 300 in members) for i in range(300))


def test_row_keys_depend_on_content_and_salt_only() -> None:
    keys = row_keys(ROWS[:3])
    np.testing.assert_array_equal(keys, row_keys(ROWS[:3].copy()))
    assert keys.dtype == np.uint64 and len(set(keys.tolist())) == 3
    assert not np.array_equal(keys, row_keys(ROWS[:3], salt="seed 1"))


@pytest.mark.parametrize(
    ("test_fraction", "validation_fraction"), [(0.0, 0.1), (1.0, 0.0), (0.2, 0.8), (0.2, -0.1)]
)
def test_fractions_outside_their_range_are_rejected(
    test_fraction: float, validation_fraction: float
) -> None:
    with pytest.raises(ValueError, match="Expected 0 < test_fraction < 1"):
        split_rows(
            ROWS, seed=0, test_fraction=test_fraction, validation_fraction=validation_fraction
        )


def test_a_table_too_small_for_a_test_part_is_named() -> None:
    one_row = ROWS[:1]
    with pytest.raises(SplitError, match=r"Received: 1 rows \(.* training, 0 test"):
        split_rows(one_row[row_keys(one_row) >= np.uint64(0.2 * 2.0**64)], seed=0)


def test_a_written_split_loads_back_by_part(tmp_path: Path) -> None:
    import pandas as pd

    from lib.energy.constants import FEATURES, TARGETS

    table = tmp_path / "energy.parquet"
    pd.DataFrame(ROWS[:200], columns=[*FEATURES, *TARGETS]).to_parquet(table)
    parts = split_rows(ROWS[:200], seed=1)
    sizes = write_split(parts, tmp_path / "split.json")
    assert sizes == {name: len(getattr(parts, name)) for name in ("train", "validation", "test")}
    assert json.loads((tmp_path / "split.json").read_text())["test"] == parts.test.tolist()
    x, y = load_part(table, tmp_path / "split.json", "test")
    np.testing.assert_allclose(x, ROWS[parts.test, :8].astype("float32"))
    assert y.shape == (len(parts.test), 2)
    x, _ = load_part(table, tmp_path / "split.json", "train", "validation")
    non_test = np.sort(np.concatenate([parts.train, parts.validation]))
    np.testing.assert_allclose(x, ROWS[non_test, :8].astype("float32"))
    x, y = load_part(table, tmp_path / "split.json")
    assert x.shape == (0, 8) and y.shape == (0, 2)


def test_a_part_table_holds_exactly_the_named_parts_rows(tmp_path: Path) -> None:
    import pandas as pd

    from lib.energy.constants import FEATURES, TARGETS
    from lib.energy.splits import write_part_table

    table = tmp_path / "energy.parquet"
    pd.DataFrame(ROWS[:200], columns=[*FEATURES, *TARGETS]).to_parquet(table)
    parts = split_rows(ROWS[:200], seed=1)
    write_split(parts, tmp_path / "split.json")

    target = tmp_path / "seen.parquet"
    rows = write_part_table(table, tmp_path / "split.json", target, "train", "validation")

    stored = pd.read_parquet(target)
    non_test = np.sort(np.concatenate([parts.train, parts.validation]))
    assert rows == len(non_test) == len(stored)
    assert list(stored.columns) == [*FEATURES, *TARGETS]
    np.testing.assert_allclose(stored.to_numpy(), ROWS[non_test])
