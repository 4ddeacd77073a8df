"""The siamese input pipelines: pixels gathered right, labels aligned, seeded and fresh."""

from __future__ import annotations

import numpy as np
import pytest

from lib.siamese.data import fresh_pair_dataset, image_batch_dataset, pair_dataset
from lib.siamese.pairs import Pairs, balanced_pairs, course_pairs

N_CLASSES = 10
PER_CLASS = 6
N_IMAGES = N_CLASSES * PER_CLASS
BATCH = 8


def _images() -> tuple[np.ndarray, np.ndarray]:
    """Images whose first two pixels spell their own position, and shuffled class labels."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N_IMAGES, 28, 28), dtype=np.uint8)
    positions = np.arange(N_IMAGES)
    images[:, 0, 0] = positions % 256
    images[:, 0, 1] = positions // 256
    labels = rng.permutation(np.repeat(np.arange(N_CLASSES), PER_CLASS)).astype(np.uint8)
    return images, labels


IMAGES, LABELS = _images()


def _position(pixels: np.ndarray) -> np.ndarray:
    return (pixels[:, 0, 0] + 256 * pixels[:, 0, 1]).astype(np.int64)


def _epoch(dataset: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One iteration of a pipeline: left/right pixels, labels, and the decoded positions."""
    lefts, rights, labels = [], [], []
    for features, label in dataset:  # type: ignore[attr-defined]
        lefts.append(features["left"].numpy())
        rights.append(features["right"].numpy())
        labels.append(label.numpy())
    left, right = np.concatenate(lefts), np.concatenate(rights)
    return left, right, np.concatenate(labels), _position(left), _position(right)


def _course() -> Pairs:
    return course_pairs(LABELS, np.random.default_rng(1))


def test_pair_dataset_gathers_the_pixels_of_each_pair_in_order() -> None:
    pairs = _course()
    left, right, label, _, _ = _epoch(pair_dataset(IMAGES, pairs, BATCH))
    np.testing.assert_array_equal(left, IMAGES[pairs.left].astype(np.float32))
    np.testing.assert_array_equal(right, IMAGES[pairs.right].astype(np.float32))
    np.testing.assert_array_equal(label, pairs.label.astype(np.float32))


def test_pair_dataset_batches_types_and_length() -> None:
    pairs = _course()
    dataset = pair_dataset(IMAGES, pairs, BATCH)
    features, label = next(iter(dataset))
    assert features["left"].shape == (BATCH, 28, 28)
    assert features["left"].dtype.name == features["right"].dtype.name == "float32"
    assert label.shape == (BATCH,) and label.dtype.name == "float32"
    assert len(dataset) == -(-len(pairs) // BATCH)
    assert sum(1 for _ in dataset) == len(dataset)


def test_pipelines_gather_from_the_callers_array_without_copying_it() -> None:
    # Training, validation and evaluation pipelines over one image array must share its
    # memory: a copy per pipeline is what used to dominate the benchmark's peak RSS.
    images = IMAGES.copy()
    pairs = _course()
    fixed = pair_dataset(images, pairs, BATCH)
    fresh = fresh_pair_dataset(images, LABELS, 40, BATCH, seed=5)
    images += 1  # in place, after the pipelines were built
    left, right, _, _, _ = _epoch(fixed)
    np.testing.assert_array_equal(left, images[pairs.left].astype(np.float32))
    np.testing.assert_array_equal(right, images[pairs.right].astype(np.float32))
    left = _epoch(fresh)[0]
    positions = _position(left - 1)  # the +1 shifted the position-coding pixels too
    np.testing.assert_array_equal(left, images[positions].astype(np.float32))


def test_shuffled_pair_dataset_keeps_every_pair_with_its_label() -> None:
    pairs = _course()
    _, _, label, left, right = _epoch(pair_dataset(IMAGES, pairs, BATCH, shuffle_seed=3))
    assert sorted(zip(left, right, label, strict=True)) == sorted(
        zip(pairs.left, pairs.right, pairs.label.astype(np.float32), strict=True)
    )
    assert not np.array_equal(left, pairs.left)


def test_shuffled_pair_dataset_is_deterministic_and_reshuffles_every_iteration() -> None:
    pairs = _course()
    first = pair_dataset(IMAGES, pairs, BATCH, shuffle_seed=3)
    again = pair_dataset(IMAGES, pairs, BATCH, shuffle_seed=3)
    other = pair_dataset(IMAGES, pairs, BATCH, shuffle_seed=4)
    epoch_1, epoch_2 = _epoch(first)[3], _epoch(first)[3]
    np.testing.assert_array_equal(_epoch(again)[3], epoch_1)
    np.testing.assert_array_equal(_epoch(again)[3], epoch_2)
    assert not np.array_equal(epoch_1, epoch_2)
    assert not np.array_equal(_epoch(other)[3], epoch_1)


def test_fresh_pairs_have_correct_labels_and_stay_in_indices() -> None:
    indices = np.flatnonzero(np.arange(N_IMAGES) % 3 != 0)  # a third held out
    dataset = fresh_pair_dataset(IMAGES, LABELS, 40, BATCH, seed=5, indices=indices)
    left_pixels, right_pixels, label, left, right = _epoch(dataset)
    assert len(label) == 40 and label.sum() == 20
    np.testing.assert_array_equal(label, (LABELS[left] == LABELS[right]).astype(np.float32))
    np.testing.assert_array_equal(left_pixels, IMAGES[left].astype(np.float32))
    np.testing.assert_array_equal(right_pixels, IMAGES[right].astype(np.float32))
    assert np.isin(np.r_[left, right], indices).all()


def test_fresh_pairs_iteration_k_is_balanced_pairs_of_a_seeded_draw() -> None:
    # Same seed, same sequence of epochs; each epoch a different set of pairs.
    first = fresh_pair_dataset(IMAGES, LABELS, 40, BATCH, seed=5)
    again = fresh_pair_dataset(IMAGES, LABELS, 40, BATCH, seed=5)
    epochs = [_epoch(first)[3:] for _ in range(3)]
    for left, right in epochs:
        replay_left, replay_right = _epoch(again)[3:]
        np.testing.assert_array_equal(replay_left, left)
        np.testing.assert_array_equal(replay_right, right)
    assert not np.array_equal(epochs[0][0], epochs[1][0])
    assert not np.array_equal(epochs[1][0], epochs[2][0])
    other = _epoch(fresh_pair_dataset(IMAGES, LABELS, 40, BATCH, seed=6))[3]
    assert not np.array_equal(other, epochs[0][0])


def test_fresh_pair_dataset_length_counts_the_last_partial_batch() -> None:
    dataset = fresh_pair_dataset(IMAGES, LABELS, 42, BATCH, seed=0)
    assert len(dataset) == 6
    assert [len(label) for _, label in dataset] == [8, 8, 8, 8, 8, 2]


def test_image_batches_pass_over_the_indices_once_per_epoch_in_a_fresh_order() -> None:
    indices = np.arange(0, N_IMAGES, 2)  # 30 images: 3 full batches of 8, 6 left out
    dataset = image_batch_dataset(IMAGES, LABELS, indices, BATCH, seed=3)
    assert len(dataset) == 3
    epochs = []
    for _ in range(2):
        batches = list(dataset)
        assert [pixels.shape for pixels, _ in batches] == [(BATCH, 28, 28)] * 3
        positions = np.concatenate([_position(pixels.numpy()) for pixels, _ in batches])
        classes = np.concatenate([c.numpy() for _, c in batches])
        assert len(set(positions)) == 24 and set(positions) <= set(indices)
        np.testing.assert_array_equal(classes, LABELS[positions])
        epochs.append(positions)
    assert not np.array_equal(epochs[0], epochs[1])
    again = image_batch_dataset(IMAGES, LABELS, indices, BATCH, seed=3)
    first = np.concatenate([_position(pixels.numpy()) for pixels, _ in again])
    np.testing.assert_array_equal(first, epochs[0])


def test_image_batches_need_one_full_batch() -> None:
    with pytest.raises(ValueError, match="at least batch_size=8 training images. Received: 5"):
        image_batch_dataset(IMAGES, LABELS, np.arange(5), BATCH, seed=0)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (IMAGES.astype(np.float32), "uint8 NumPy array. Received: type=ndarray, dtype=float32"),
        (IMAGES[:, :27], r"shape \(n, 28, 28\) with n > 0. Received: images.shape=\(60, 27, 28\)"),
        (IMAGES[:0], r"images.shape=\(0, 28, 28\)"),
    ],
)
def test_pipelines_reject_bad_images(images: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pair_dataset(images, _course(), BATCH)
    with pytest.raises(ValueError, match=match):
        fresh_pair_dataset(images, LABELS, 20, BATCH, seed=0)


def test_pair_dataset_rejects_positions_outside_the_images() -> None:
    pairs = Pairs(
        left=np.array([0, 59], dtype=np.int32),
        right=np.array([1, 60], dtype=np.int32),
        label=np.array([1, 0], dtype=np.uint8),
    )
    with pytest.raises(ValueError, match="right positions in 0..59. Received: right min=1, max=60"):
        pair_dataset(IMAGES, pairs, BATCH)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_pipelines_reject_bad_batch_sizes(batch_size: object) -> None:
    with pytest.raises(ValueError, match="positive integer batch_size"):
        pair_dataset(IMAGES, _course(), batch_size)  # type: ignore[arg-type]


def test_fresh_pair_dataset_fails_fast_on_bad_pair_arguments() -> None:
    with pytest.raises(ValueError, match="even n_pairs. Received: n_pairs=21"):
        fresh_pair_dataset(IMAGES, LABELS, 21, BATCH, seed=0)
    with pytest.raises(ValueError, match=r"one label per image. Received: labels.shape=\(59,\)"):
        fresh_pair_dataset(IMAGES, LABELS[:-1], 20, BATCH, seed=0)


def test_fresh_pairs_follow_balanced_pairs_protocol() -> None:
    # Every anchor class gets its share: the same counts balanced_pairs itself produces.
    _, _, label, left, _ = _epoch(fresh_pair_dataset(IMAGES, LABELS, 200, BATCH, seed=1))
    reference = balanced_pairs(LABELS, 200, np.random.default_rng(0))
    assert (
        np.bincount(LABELS[left], minlength=10).tolist()
        == np.bincount(LABELS[reference.left], minlength=10).tolist()
    )
    assert label.sum() == reference.label.sum()
