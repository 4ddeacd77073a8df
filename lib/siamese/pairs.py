"""Siamese pairs as index pairs into an image array: vectorised, seeded, class-balanced.

A pair is ``(left, right, label)`` with ``label = 1`` when both images share a class and ``0``
otherwise. Only int32 positions are produced, never copies of pixels; the input pipeline
gathers the images batch by batch. Every function takes an explicit ``np.random.Generator``,
so the same labels and seed give the same pairs, bit for bit.

Functions take the full label array plus, optionally, ``indices``: the positions they may use
(for example the training part of `split_indices`). Pairs then only ever reference those
positions, which keeps validation and test images out of training pairs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lib.core.atomic import atomic_path
from lib.core.errors import InputError
from lib.core.provenance import METADATA_KEY, PARQUET_COMPRESSION, read_json_metadata
from lib.siamese.constants import NUM_CLASSES

MIN_IMAGES_PER_CLASS = 2  # a same-class partner must differ from the image itself
POSITIVE = 1
NEGATIVE = 0
INDEX_DTYPE = np.int32
LABEL_DTYPE = np.uint8

PAIRS_SCHEMA_VERSION = 1
LEFT_COLUMN = "left_index"
RIGHT_COLUMN = "right_index"
LABEL_COLUMN = "label"
PAIRS_SCHEMA = pa.schema(
    [
        pa.field(LEFT_COLUMN, pa.int32(), nullable=False),
        pa.field(RIGHT_COLUMN, pa.int32(), nullable=False),
        pa.field(LABEL_COLUMN, pa.uint8(), nullable=False),
    ]
)


class PairsFormatError(InputError):
    """A pairs file is not what `write_pairs` writes; the message names the file."""


@dataclass(frozen=True)
class Pairs:
    """Three aligned arrays: ``left`` and ``right`` (int32 image positions), ``label`` (uint8).

    ``label[k] == 1`` means images ``left[k]`` and ``right[k]`` share a class.
    """

    left: np.ndarray
    right: np.ndarray
    label: np.ndarray

    def __post_init__(self) -> None:
        sizes = {name: len(getattr(self, name)) for name in ("left", "right", "label")}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"Expected left, right and label of one length. Received: {sizes}")
        dtypes = (self.left.dtype, self.right.dtype, self.label.dtype)
        if dtypes != (INDEX_DTYPE, INDEX_DTYPE, LABEL_DTYPE):
            raise ValueError(
                "Expected dtypes left=int32, right=int32, label=uint8. "
                f"Received: left={dtypes[0]}, right={dtypes[1]}, label={dtypes[2]}"
            )
        if self.label.size and self.label.max() > POSITIVE:
            raise ValueError(f"Expected labels 0 or 1. Received: max label={self.label.max()}")

    def __len__(self) -> int:
        return len(self.label)


def split_indices(
    labels: np.ndarray, validation_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out a stratified fraction of the images, from which validation pairs are built.

    Each class loses ``round(count * validation_fraction)`` images to validation, so both
    parts keep the class balance; test pairs come from the separate test images instead.

    Returns:
        ``(train_idx, val_idx)``: sorted, disjoint int64 positions covering every image.

    Raises:
        ValueError: when the fraction is outside (0, 1) or a class would leave either part
            with fewer than 2 images (too few for a positive pair).
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(
            "Expected 0 < validation_fraction < 1. "
            f"Received: validation_fraction={validation_fraction}"
        )
    labels = _check_labels(labels)
    train_parts, val_parts = [], []
    for cls in range(NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_val = round(len(members) * validation_fraction)
        if min(n_val, len(members) - n_val) < MIN_IMAGES_PER_CLASS:
            raise ValueError(
                f"Expected at least {MIN_IMAGES_PER_CLASS} images of class {cls} in both "
                f"parts. Received: {len(members)} images, {n_val} held out at "
                f"validation_fraction={validation_fraction}"
            )
        val_parts.append(members[:n_val])
        train_parts.append(members[n_val:])
    return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(val_parts))


def course_pairs(
    labels: np.ndarray, rng: np.random.Generator, *, indices: np.ndarray | None = None
) -> Pairs:
    """The pairs of the TensorFlow "Advanced techniques" course's Siamese network, vectorised.

    With ``digits[d]`` the positions of class ``d`` in ascending order and
    ``n = min_d len(digits[d]) - 1``, for each class ``d`` and ``i < n`` it emits the positive
    ``(digits[d][i], digits[d][i + 1])`` then the negative ``(digits[d][i], digits[dn][i])``
    with ``dn = (d + randint(1, 9)) % 10``: ``2 * 10 * n`` pairs, alternating 1, 0, in that
    order. Positives link neighbours only, so each epoch sees the same ones; `balanced_pairs`
    draws fresh partners instead.

    Raises:
        ValueError: on labels outside 0..9, bad `indices`, or a class with fewer than 2 images.
    """
    labels = _check_labels(labels)
    pool = _check_pool(indices, len(labels))
    members = [pool[labels[pool] == cls] for cls in range(NUM_CLASSES)]
    _check_class_sizes([len(m) for m in members])
    n = min(len(m) for m in members) - 1
    digits = np.stack([m[: n + 1] for m in members])  # (classes, n + 1), ascending positions
    offset = rng.integers(1, NUM_CLASSES, size=(NUM_CLASSES, n))
    other_class = (np.arange(NUM_CLASSES)[:, None] + offset) % NUM_CLASSES
    anchors = digits[:, :n]
    # (classes, n, 2): [..., 0] is the positive of step i, [..., 1] its negative.
    left = np.stack([anchors, anchors], axis=-1)
    right = np.stack([digits[:, 1:], digits[other_class, np.arange(n)]], axis=-1)
    label = np.broadcast_to(np.array([POSITIVE, NEGATIVE], dtype=LABEL_DTYPE), left.shape)
    return Pairs(
        left=left.reshape(-1).astype(INDEX_DTYPE),
        right=right.reshape(-1).astype(INDEX_DTYPE),
        label=label.reshape(-1).copy(),
    )


def balanced_pairs(
    labels: np.ndarray,
    n_pairs: int,
    rng: np.random.Generator,
    *,
    indices: np.ndarray | None = None,
) -> Pairs:
    """Draw `n_pairs` shuffled pairs: half same-class, half different-class, classes balanced.

    Each class anchors ``n_pairs / 10`` pairs (within 1), as many positives as negatives
    (within 1). Anchors cycle through a class's images in random order, so no
    image anchors more than once more than another of its class. A positive's partner is
    uniform over the other images of the anchor's class; a negative's partner class is
    uniform over the other 9 classes, and its image uniform within that class. Call it with
    a fresh seed each epoch for fresh pairs.

    Raises:
        ValueError: when `n_pairs` is not a positive even number, on labels outside 0..9, bad
            `indices`, or a class with fewer than 2 images.
    """
    if n_pairs <= 0 or n_pairs % 2:
        raise ValueError(f"Expected a positive even n_pairs. Received: n_pairs={n_pairs}")
    labels = _check_labels(labels)
    pool = _check_pool(indices, len(labels))
    # Class-sorted pool: class c occupies sorted_pool[starts[c] : starts[c] + counts[c]].
    sorted_pool = pool[np.argsort(labels[pool], kind="stable")]
    counts = np.bincount(labels[pool], minlength=NUM_CLASSES)
    _check_class_sizes(counts.tolist())
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])

    n_positive, n_negative = _per_class_counts(n_pairs // 2, rng)
    lefts, rights, pair_labels = [], [], []
    for cls in range(NUM_CLASSES):
        count, start = int(counts[cls]), int(starts[cls])
        n_pos, n_neg = int(n_positive[cls]), int(n_negative[cls])
        anchor = _cycled_sample(count, n_pos + n_neg, rng)
        pos_anchor, neg_anchor = anchor[:n_pos], anchor[n_pos:]
        # Uniform over the other count - 1 members: skip over the anchor's own slot.
        partner = rng.integers(0, count - 1, size=n_pos)
        partner += partner >= pos_anchor
        other_class = (cls + rng.integers(1, NUM_CLASSES, size=n_neg)) % NUM_CLASSES
        other = starts[other_class] + rng.integers(0, counts[other_class])
        lefts += [sorted_pool[start + pos_anchor], sorted_pool[start + neg_anchor]]
        rights += [sorted_pool[start + partner], sorted_pool[other]]
        pair_labels += [np.full(n_pos, POSITIVE), np.full(n_neg, NEGATIVE)]
    order = rng.permutation(n_pairs)
    return Pairs(
        left=np.concatenate(lefts)[order].astype(INDEX_DTYPE),
        right=np.concatenate(rights)[order].astype(INDEX_DTYPE),
        label=np.concatenate(pair_labels)[order].astype(LABEL_DTYPE),
    )


def write_pairs(pairs: Pairs, target: Path, metadata: Mapping[str, Any]) -> int:
    """Write pairs as Parquet (``left_index``, ``right_index``, ``label``), temp-then-rename.

    Args:
        pairs: the pairs to store.
        target: file to create (or replace); it appears only once complete.
        metadata: JSON-serialisable provenance (seed, protocol, source table sha256, code
            version...); stored with the schema version and counts in the Parquet key-value
            metadata under ``trainflow``.

    Returns:
        The number of pairs written.
    """
    provenance = {
        **metadata,
        "schema_version": PAIRS_SCHEMA_VERSION,
        "pairs": len(pairs),
        "positives": int(np.count_nonzero(pairs.label)),
    }
    table = pa.Table.from_arrays(
        [pa.array(pairs.left), pa.array(pairs.right), pa.array(pairs.label)],
        schema=PAIRS_SCHEMA,
    ).replace_schema_metadata({METADATA_KEY: json.dumps(provenance, sort_keys=True)})
    target = Path(target)
    with atomic_path(target) as temporary:
        pq.write_table(table, temporary, compression=PARQUET_COMPRESSION)
    return len(pairs)


def read_pairs(path: Path) -> Pairs:
    """Read pairs written by `write_pairs`.

    Raises:
        PairsFormatError: when the file is not Parquet or its columns differ from
            ``left_index: int32, right_index: int32, label: uint8``.
    """
    path = Path(path)
    table = _read_table(path)
    if not table.schema.equals(PAIRS_SCHEMA, check_metadata=False):
        raise PairsFormatError(
            f"{path}: Expected columns {PAIRS_SCHEMA.to_string(show_schema_metadata=False)!r}. "
            f"Received: {table.schema.to_string(show_schema_metadata=False)!r}"
        )
    columns = [
        table.column(name).combine_chunks().to_numpy(zero_copy_only=False)
        for name in (LEFT_COLUMN, RIGHT_COLUMN, LABEL_COLUMN)
    ]
    try:
        return Pairs(*columns)
    except ValueError as error:
        raise PairsFormatError(f"{path}: {error}") from error


def read_pairs_metadata(path: Path) -> dict[str, Any]:
    """The provenance `write_pairs` stored, without reading the rows.

    Raises:
        PairsFormatError: when the file is not Parquet or has no trainflow metadata.
    """
    return read_json_metadata(path, METADATA_KEY, PairsFormatError)


def _read_table(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise PairsFormatError(f"{path}: Expected a Parquet file. Received: {error}") from error


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            "Expected a 1-D integer label array. "
            f"Received: dtype={labels.dtype}, shape={labels.shape}"
        )
    if labels.size >= np.iinfo(INDEX_DTYPE).max:
        raise ValueError(
            f"Expected fewer than {np.iinfo(INDEX_DTYPE).max} images (int32 indices). "
            f"Received: {labels.size}"
        )
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if bad.size:
        raise ValueError(
            f"Expected labels in 0..{NUM_CLASSES - 1}. "
            f"Received: label={labels[bad[0]]} at position {bad[0]}"
        )
    return labels


def _check_pool(indices: np.ndarray | None, n_images: int) -> np.ndarray:
    """The usable positions, ascending and unique; all of them when `indices` is None."""
    if indices is None:
        return np.arange(n_images)
    pool = np.asarray(indices)
    if pool.ndim != 1 or not np.issubdtype(pool.dtype, np.integer):
        raise ValueError(
            f"Expected 1-D integer indices. Received: dtype={pool.dtype}, shape={pool.shape}"
        )
    if pool.size and (pool.min() < 0 or pool.max() >= n_images):
        raise ValueError(
            f"Expected indices in 0..{n_images - 1}. Received: min={pool.min()}, max={pool.max()}"
        )
    unique = np.unique(pool)
    if unique.size != pool.size:
        raise ValueError(f"Expected unique indices. Received: {pool.size - unique.size} duplicates")
    return unique


def _check_class_sizes(counts: list[int]) -> None:
    small = {cls: count for cls, count in enumerate(counts) if count < MIN_IMAGES_PER_CLASS}
    if small:
        raise ValueError(
            f"Expected at least {MIN_IMAGES_PER_CLASS} images of every class "
            f"0..{NUM_CLASSES - 1}. Received: counts {small}"
        )


def _per_class_counts(n_each: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split `n_each` positives and `n_each` negatives over the classes, within 1 each.

    The remainders go to classes in a random cyclic order, negatives continuing where the
    positives stopped, so the anchor total per class also stays within 1.
    """
    base, extra = divmod(n_each, NUM_CLASSES)
    order = rng.permutation(NUM_CLASSES)
    positive = np.full(NUM_CLASSES, base)
    negative = np.full(NUM_CLASSES, base)
    positive[order[:extra]] += 1
    negative[order[(extra + np.arange(extra)) % NUM_CLASSES]] += 1
    return positive, negative


def _cycled_sample(n_items: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` draws from ``range(n_items)``: whole shuffled rounds, then a partial round."""
    rounds, rest = divmod(size, n_items)
    full = rng.permuted(np.tile(np.arange(n_items), (rounds, 1)), axis=1).reshape(-1)
    return np.concatenate([full, rng.permutation(n_items)[:rest]])
