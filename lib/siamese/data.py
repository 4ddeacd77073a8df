"""tf.data input pipelines for the siamese network: index pairs in, gathered pixel batches out.

Pairs travel as int32 positions (`lib.siamese.pairs.Pairs`); each batch gathers its images from the
caller's ``(n, 28, 28)`` uint8 array, never a copy of it, so pixel pairs are never materialised
(the course's fixed pairs alone would be 120k x 2 x 784 bytes, and fresh pairs every epoch
would multiply that by the epoch count). The array must not change while a pipeline is used.

The pair pipelines yield ``({"left": (b, 28, 28), "right": (b, 28, 28)}, label)``: raw pixel
values 0..255 as float32 (the model rescales them itself, so serving passes raw pixels too) and
float32 labels, 1 = same class. `image_batch_dataset` yields single images and their classes
instead, for training on every pair within a batch (`lib.siamese.model.InBatchTrainer`).

Randomness per epoch. `keras.Model.fit` iterates a dataset of known length afresh every epoch,
so a pipeline that should change from one epoch to the next draws, on each iteration, one
value from ``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`` and seeds NumPy
with it: the k-th iteration of a pipeline built with seed s is the same in every process, and
differs from the (k+1)-th. This needs nothing from the training loop (no epoch callback, no
`steps_per_epoch`). A run resumed by `BackupAndRestore` restarts that sequence; the pairs of
its remaining epochs then differ from an uninterrupted run's, but are just as deterministic.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from lib.siamese.constants import IMAGE_SHAPE, LEFT, RIGHT
from lib.siamese.pairs import Pairs, balanced_pairs

_UINT64_MASK = (1 << 64) - 1

PairMaker = Callable[[np.random.Generator], Pairs]


def pair_dataset(
    images: np.ndarray, pairs: Pairs, batch_size: int, shuffle_seed: int | None = None
) -> tf.data.Dataset:
    """Batches of fixed pairs, in their stored order or reshuffled every iteration.

    Args:
        images: ``(n, 28, 28)`` uint8 array the pair positions point into.
        pairs: the pairs; every position must be < n.
        batch_size: pairs per batch; the last batch may be smaller.
        shuffle_seed: `None` keeps the pairs' order (evaluation, validation); an int gives a
            fresh seeded permutation on every iteration (training on fixed pairs, as the
            course's `fit(shuffle=True)` does).

    Raises:
        ValueError: when `images` is not (n, 28, 28) uint8, a position is out of range, or
            `batch_size` is not positive.
    """
    _check_images(images)
    _check_positions(pairs, len(images))
    _check_batch_size(batch_size)
    if shuffle_seed is None:
        slices = tf.data.Dataset.from_tensor_slices(_columns(pairs))
        return _finish(slices, images, batch_size, len(pairs))

    def permuted(rng: np.random.Generator) -> Pairs:
        order = rng.permutation(len(pairs))
        return Pairs(pairs.left[order], pairs.right[order], pairs.label[order])

    return _per_iteration(images, permuted, len(pairs), batch_size, shuffle_seed)


def fresh_pair_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    pairs_per_epoch: int,
    batch_size: int,
    seed: int,
    *,
    indices: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Batches of `balanced_pairs`, drawn anew on every iteration (so every epoch).

    Fixed pairs let a network memorise them; fresh partners every epoch show it many more of
    the ``n**2`` possible pairs at the same cost per epoch.

    Args:
        images: ``(n, 28, 28)`` uint8 array.
        labels: ``(n,)`` classes 0..9 of `images`.
        pairs_per_epoch: pairs per iteration, a positive even number (half same-class).
        batch_size: pairs per batch; the last batch may be smaller.
        seed: base seed of the per-iteration stream (see the module docstring).
        indices: positions the pairs may use (the training part of a split); all by default.

    Raises:
        ValueError: on the `pair_dataset` errors, a label/image count mismatch, or any
            `balanced_pairs` error (raised here, before training starts, not in a worker).
    """
    _check_images(images)
    _check_batch_size(batch_size)
    labels = np.asarray(labels)
    if labels.shape != (len(images),):
        raise ValueError(
            f"Expected one label per image. Received: labels.shape={labels.shape}, "
            f"images.shape={images.shape}"
        )

    def draw(rng: np.random.Generator) -> Pairs:
        return balanced_pairs(labels, pairs_per_epoch, rng, indices=indices)

    draw(np.random.default_rng(seed))  # fail fast on bad arguments
    return _per_iteration(images, draw, pairs_per_epoch, batch_size, seed)


def image_batch_dataset(
    images: np.ndarray, labels: np.ndarray, indices: np.ndarray, batch_size: int, seed: int
) -> tf.data.Dataset:
    """Batches of ``(pixels (b, 28, 28) float32, classes (b,) int32)``, reshuffled every epoch.

    Every iteration is one pass over `indices` in a fresh seeded order (see the module
    docstring), in full batches only: a short last batch would hold few or no same-class
    pairs and would change the step's shape.

    Raises:
        ValueError: on bad `images` or `batch_size`, a label/image count mismatch, or fewer
            `indices` than one batch.
    """
    _check_images(images)
    _check_batch_size(batch_size)
    labels = np.asarray(labels)
    indices = np.asarray(indices)
    if labels.shape != (len(images),):
        raise ValueError(
            f"Expected one label per image. Received: labels.shape={labels.shape}, "
            f"images.shape={images.shape}"
        )
    n_batches = len(indices) // batch_size
    if n_batches == 0:
        raise ValueError(
            f"Expected at least batch_size={batch_size} training images. Received: {len(indices)}"
        )

    def order(draw: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(int(draw) & _UINT64_MASK)
        return rng.permutation(indices)[: n_batches * batch_size].astype(np.int32)

    def to_slices(draw: tf.Tensor) -> tf.data.Dataset:
        positions = tf.numpy_function(order, [draw], tf.int32, stateful=False)
        positions.set_shape([n_batches * batch_size])
        return tf.data.Dataset.from_tensor_slices(positions)

    def gather_images(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return images[positions].astype(np.float32), labels[positions].astype(np.int32)

    def gather(positions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        pixels, classes = tf.numpy_function(
            gather_images, [positions], [tf.float32, tf.int32], stateful=False
        )
        pixels.set_shape([batch_size, *IMAGE_SHAPE])
        classes.set_shape([batch_size])
        return pixels, classes

    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    return (
        draws.flat_map(to_slices)
        .batch(batch_size, drop_remainder=True)
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        .apply(tf.data.experimental.assert_cardinality(n_batches))
        .prefetch(tf.data.AUTOTUNE)
    )


def _per_iteration(
    images: np.ndarray, make_pairs: PairMaker, n_pairs: int, batch_size: int, seed: int
) -> tf.data.Dataset:
    """Call `make_pairs` once per iteration with a generator seeded from the iteration's draw."""

    def arrays(draw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pairs = make_pairs(np.random.default_rng(int(draw) & _UINT64_MASK))
        return pairs.left, pairs.right, pairs.label

    def to_slices(draw: tf.Tensor) -> tf.data.Dataset:
        columns = tf.numpy_function(arrays, [draw], [tf.int32, tf.int32, tf.uint8], stateful=False)
        for column in columns:
            column.set_shape([n_pairs])
        return tf.data.Dataset.from_tensor_slices(tuple(columns))

    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    return _finish(draws.flat_map(to_slices), images, batch_size, n_pairs)


def _finish(
    slices: tf.data.Dataset, images: np.ndarray, batch_size: int, n_pairs: int
) -> tf.data.Dataset:
    """Batch index triples, gather their pixels, and state the length so Keras knows it.

    The gather runs in NumPy on `images` itself, so every pipeline over one array reads the
    same memory. A `tf.constant(images)` per pipeline cost ~90 MB each on the training images
    (the tensor's copy and the one captured into the tf.data graph), for training, validation
    and every `predict`.
    """

    def gather_pixels(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return images[left].astype(np.float32), images[right].astype(np.float32)

    def gather(left: tf.Tensor, right: tf.Tensor, label: tf.Tensor) -> tuple[Any, tf.Tensor]:
        pixels = tf.numpy_function(
            gather_pixels, [left, right], [tf.float32, tf.float32], stateful=False
        )
        for side in pixels:
            side.set_shape([None, *IMAGE_SHAPE])
        return {LEFT: pixels[0], RIGHT: pixels[1]}, tf.cast(label, tf.float32)

    n_batches = -(-n_pairs // batch_size)
    return (
        slices.batch(batch_size)
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        .apply(tf.data.experimental.assert_cardinality(n_batches))
        .prefetch(tf.data.AUTOTUNE)
    )


def _columns(pairs: Pairs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return pairs.left, pairs.right, pairs.label


def _check_images(images: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise ValueError(
            "Expected images as a uint8 NumPy array. "
            f"Received: type={type(images).__name__}, dtype={getattr(images, 'dtype', None)}"
        )
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE or len(images) == 0:
        raise ValueError(
            f"Expected images of shape (n, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]}) with n > 0. "
            f"Received: images.shape={images.shape}"
        )


def _check_positions(pairs: Pairs, n_images: int) -> None:
    if len(pairs) == 0:
        raise ValueError("Expected at least one pair. Received: 0 pairs")
    for name in (LEFT, RIGHT):
        column = getattr(pairs, name)
        low, high = int(column.min()), int(column.max())
        if low < 0 or high >= n_images:
            raise ValueError(
                f"Expected {name} positions in 0..{n_images - 1}. "
                f"Received: {name} min={low}, max={high}"
            )


def _check_batch_size(batch_size: int) -> None:
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size < 1
    ):
        raise ValueError(f"Expected a positive integer batch_size. Received: {batch_size!r}")
