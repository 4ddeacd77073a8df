"""Pair generation: properties over random label sets (hypothesis), the course protocol, I/O."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.siamese.pairs import (
    NUM_CLASSES,
    Pairs,
    PairsFormatError,
    balanced_pairs,
    course_pairs,
    read_pairs,
    read_pairs_metadata,
    split_indices,
    write_pairs,
)

PROPERTY_SETTINGS = settings(max_examples=40, deadline=None)
class_counts = st.lists(st.integers(2, 9), min_size=NUM_CLASSES, max_size=NUM_CLASSES)
seeds = st.integers(0, 2**32 - 1)


def make_labels(counts: list[int], seed: int) -> np.ndarray:
    """Labels with `counts[c]` images of class c, in a shuffled order."""
    labels = np.repeat(np.arange(NUM_CLASSES, dtype=np.uint8), counts)
    return np.random.default_rng(seed).permutation(labels)


def assert_valid(pairs: Pairs, labels: np.ndarray, pool: np.ndarray) -> None:
    """Invariants every pair set must hold, whatever the protocol."""
    assert pairs.left.dtype == np.int32 and pairs.right.dtype == np.int32
    assert pairs.label.dtype == np.uint8
    assert np.isin(pairs.left, pool).all() and np.isin(pairs.right, pool).all()
    np.testing.assert_array_equal(pairs.label, labels[pairs.left] == labels[pairs.right])
    positive = pairs.label == 1
    assert (pairs.left[positive] != pairs.right[positive]).all()


# --- balanced_pairs ----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(counts=class_counts, half=st.integers(1, 150), seed=seeds)
def test_balanced_pairs_are_balanced_and_correct(counts: list[int], half: int, seed: int) -> None:
    labels = make_labels(counts, seed)
    pairs = balanced_pairs(labels, 2 * half, np.random.default_rng(seed))
    assert len(pairs) == 2 * half
    assert int(pairs.label.sum()) == half
    assert_valid(pairs, labels, np.arange(len(labels)))
    per_class = np.bincount(labels[pairs.left], minlength=NUM_CLASSES)
    assert per_class.max() - per_class.min() <= 1
    for kind in (0, 1):
        kind_counts = np.bincount(labels[pairs.left[pairs.label == kind]], minlength=NUM_CLASSES)
        assert kind_counts.max() - kind_counts.min() <= 1


@PROPERTY_SETTINGS
@given(counts=class_counts, half=st.integers(1, 100), seed=seeds)
def test_balanced_pairs_are_deterministic(counts: list[int], half: int, seed: int) -> None:
    labels = make_labels(counts, seed)
    first = balanced_pairs(labels, 2 * half, np.random.default_rng(seed))
    second = balanced_pairs(labels, 2 * half, np.random.default_rng(seed))
    for name in ("left", "right", "label"):
        assert getattr(first, name).tobytes() == getattr(second, name).tobytes()


@PROPERTY_SETTINGS
@given(inside=class_counts, outside=class_counts, half=st.integers(1, 100), seed=seeds)
def test_pairs_from_a_subset_stay_in_it(
    inside: list[int], outside: list[int], half: int, seed: int
) -> None:
    labels = make_labels([a + b for a, b in zip(inside, outside, strict=True)], seed)
    # Take the first `inside[c]` images of each class as the subset.
    rank = np.empty(len(labels), dtype=int)
    for cls in range(NUM_CLASSES):
        members = np.flatnonzero(labels == cls)
        rank[members] = np.arange(len(members))
    subset = np.flatnonzero(rank < np.asarray(inside)[labels])
    rng = np.random.default_rng(seed)
    assert_valid(balanced_pairs(labels, 2 * half, rng, indices=subset), labels, subset)
    assert_valid(course_pairs(labels, rng, indices=subset), labels, subset)


def test_different_seeds_give_different_pairs() -> None:
    labels = make_labels([20] * NUM_CLASSES, seed=0)
    first = balanced_pairs(labels, 200, np.random.default_rng(1))
    second = balanced_pairs(labels, 200, np.random.default_rng(2))
    assert not np.array_equal(first.right, second.right)


def test_partners_are_spread_uniformly() -> None:
    labels = make_labels([50] * NUM_CLASSES, seed=0)
    pairs = balanced_pairs(labels, 99_980, np.random.default_rng(0))
    negative = pairs.label == 0
    table = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=int)
    np.add.at(table, (labels[pairs.left[negative]], labels[pairs.right[negative]]), 1)
    off_diagonal = table[~np.eye(NUM_CLASSES, dtype=bool)]
    expected = 4_999 / (NUM_CLASSES - 1)
    assert np.abs(off_diagonal - expected).max() < 0.15 * expected
    # Anchors cycle through a class: each of 50 images anchors 199 or 200 of its 9,998 pairs.
    anchored = np.bincount(pairs.left, minlength=len(labels))
    assert anchored.min() == 199 and anchored.max() == 200


def test_full_training_set_is_vectorised() -> None:
    labels = make_labels([6_000] * NUM_CLASSES, seed=0)
    train, _ = split_indices(labels, 0.1, np.random.default_rng(0))
    pairs = balanced_pairs(labels, 120_000, np.random.default_rng(1), indices=train)
    assert len(pairs) == 120_000
    assert int(pairs.label.sum()) == 60_000
    course = course_pairs(labels, np.random.default_rng(2))
    assert len(course) == 2 * NUM_CLASSES * 5_999


@pytest.mark.parametrize("n_pairs", [0, -2, 7])
def test_balanced_pairs_wants_a_positive_even_count(n_pairs: int) -> None:
    labels = make_labels([3] * NUM_CLASSES, seed=0)
    with pytest.raises(ValueError, match=f"positive even n_pairs. Received: n_pairs={n_pairs}"):
        balanced_pairs(labels, n_pairs, np.random.default_rng(0))


@pytest.mark.parametrize("protocol", ["course", "balanced"])
def test_a_class_with_one_image_is_refused(protocol: str) -> None:
    labels = make_labels([3] * 9 + [1], seed=0)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"at least 2 images of every class .* \{9: 1\}"):
        if protocol == "course":
            course_pairs(labels, rng)
        else:
            balanced_pairs(labels, 10, rng)


def test_bad_labels_and_indices_are_refused() -> None:
    labels = make_labels([3] * NUM_CLASSES, seed=0)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="labels in 0..9. Received: label=10 at position 2"):
        balanced_pairs(np.array([0, 1, 10, 3]), 2, rng)
    with pytest.raises(ValueError, match="1-D integer label array"):
        course_pairs(labels.astype(float), rng)
    with pytest.raises(ValueError, match=r"indices in 0..29. Received: min=0, max=30"):
        balanced_pairs(labels, 2, rng, indices=np.array([0, 30]))
    with pytest.raises(ValueError, match="unique indices. Received: 1 duplicates"):
        course_pairs(labels, rng, indices=np.array([0, 1, 1]))


# --- course_pairs ------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(counts=class_counts, seed=seeds)
def test_course_pairs_follow_the_course_protocol(counts: list[int], seed: int) -> None:
    labels = make_labels(counts, seed)
    pairs = course_pairs(labels, np.random.default_rng(seed))
    n = min(counts) - 1
    assert len(pairs) == 2 * NUM_CLASSES * n
    assert_valid(pairs, labels, np.arange(len(labels)))
    np.testing.assert_array_equal(pairs.label, np.tile([1, 0], NUM_CLASSES * n))
    positive_left, positive_right = pairs.left[0::2], pairs.right[0::2]
    # Each positive pairs the i-th and (i+1)-th image of class d, for d-major, i-minor order.
    members = [np.flatnonzero(labels == cls) for cls in range(NUM_CLASSES)]
    np.testing.assert_array_equal(positive_left, np.concatenate([m[:n] for m in members]))
    np.testing.assert_array_equal(positive_right, np.concatenate([m[1 : n + 1] for m in members]))
    # A negative shares its anchor with the positive before it; its partner is the i-th of dn.
    np.testing.assert_array_equal(pairs.left[1::2], positive_left)
    step = np.tile(np.arange(n), NUM_CLASSES)
    partner_class = labels[pairs.right[1::2]]
    np.testing.assert_array_equal(
        pairs.right[1::2], [members[c][i] for c, i in zip(partner_class, step, strict=True)]
    )


def test_course_pairs_match_the_course_loop() -> None:
    """The vectorised version equals the course's loop when fed the same class offsets."""
    labels = make_labels([4, 6, 5, 7, 4, 9, 8, 5, 6, 4], seed=3)
    pairs = course_pairs(labels, np.random.default_rng(7))
    digit_indices = [np.where(labels == i)[0] for i in range(NUM_CLASSES)]
    n = min(len(d) for d in digit_indices) - 1
    offsets = np.random.default_rng(7).integers(1, NUM_CLASSES, size=(NUM_CLASSES, n))
    expected = []
    for d in range(NUM_CLASSES):
        for i in range(n):
            expected.append((digit_indices[d][i], digit_indices[d][i + 1], 1))
            dn = (d + offsets[d, i]) % NUM_CLASSES
            expected.append((digit_indices[d][i], digit_indices[dn][i], 0))
    got = np.stack([pairs.left, pairs.right, pairs.label], axis=1)
    np.testing.assert_array_equal(got, np.array(expected))


# --- split_indices -----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(counts=st.lists(st.integers(10, 40), min_size=10, max_size=10), seed=seeds)
def test_split_indices_is_stratified_and_deterministic(counts: list[int], seed: int) -> None:
    labels = make_labels(counts, seed)
    train, val = split_indices(labels, 0.25, np.random.default_rng(seed))
    again = split_indices(labels, 0.25, np.random.default_rng(seed))
    assert train.tobytes() == again[0].tobytes() and val.tobytes() == again[1].tobytes()
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(len(labels)))
    expected_val = [round(c * 0.25) for c in counts]
    np.testing.assert_array_equal(np.bincount(labels[val], minlength=NUM_CLASSES), expected_val)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_split_indices_refuses_fractions_outside_0_1(fraction: float) -> None:
    labels = make_labels([10] * NUM_CLASSES, seed=0)
    with pytest.raises(ValueError, match=f"Received: validation_fraction={fraction}"):
        split_indices(labels, fraction, np.random.default_rng(0))


def test_split_indices_refuses_a_class_too_small_to_split() -> None:
    labels = make_labels([10] * 9 + [3], seed=0)
    with pytest.raises(ValueError, match="images of class 9 in both parts. Received: 3 images"):
        split_indices(labels, 0.5, np.random.default_rng(0))


# --- Parquet I/O -------------------------------------------------------------------------------


def test_write_and_read_pairs_round_trip(tmp_path: Path) -> None:
    labels = make_labels([5] * NUM_CLASSES, seed=0)
    pairs = balanced_pairs(labels, 40, np.random.default_rng(0))
    target = tmp_path / "out" / "pairs.parquet"
    assert write_pairs(pairs, target, {"seed": 0, "protocol": "balanced"}) == 40
    back = read_pairs(target)
    for name in ("left", "right", "label"):
        assert getattr(back, name).tobytes() == getattr(pairs, name).tobytes()
    metadata = read_pairs_metadata(target)
    assert metadata["seed"] == 0 and metadata["protocol"] == "balanced"
    assert metadata["pairs"] == 40 and metadata["positives"] == 20
    assert pq.read_schema(target).names == ["left_index", "right_index", "label"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["pairs.parquet"]


def test_read_pairs_refuses_other_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"nope")
    with pytest.raises(PairsFormatError, match="junk.parquet: Expected a Parquet file"):
        read_pairs(junk)
    wrong = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"left_index": pa.array([1], pa.int64())}), wrong)
    with pytest.raises(PairsFormatError, match="wrong.parquet: Expected columns"):
        read_pairs(wrong)
    with pytest.raises(PairsFormatError, match="wrong.parquet: Expected 'trainflow'"):
        read_pairs_metadata(wrong)


def test_pairs_refuse_misaligned_or_mistyped_arrays() -> None:
    index = np.array([0, 1], dtype=np.int32)
    with pytest.raises(ValueError, match="one length. Received: {'left': 2, 'right': 1"):
        Pairs(index, index[:1], np.array([1, 0], dtype=np.uint8))
    with pytest.raises(ValueError, match="Received: left=int64"):
        Pairs(index.astype(np.int64), index, np.array([1, 0], dtype=np.uint8))
    with pytest.raises(ValueError, match="labels 0 or 1. Received: max label=2"):
        Pairs(index, index, np.array([2, 0], dtype=np.uint8))
