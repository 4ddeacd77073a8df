"""Siamese drift: class balance and pixel statistics of images against the champion's.

A version carries a profile of the training images it learned from (`write_profile`): one
row per image with its class, mean intensity and pixel standard deviation, a few bytes per
image, so even 60,000 images make a file of a few hundred KB. New images are
profiled the same way and compared column by column (`lib.core.drift`): the class as a
category (PSI over class shares, classes the reference never held), the two statistics as
numbers (PSI and KS). The mean of per-image means is the overall mean intensity.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lib.core.drift import DriftReport, compare_frames
from lib.core.provenance import write_frame
from lib.siamese.idx import read_image_table

CLASS = "class"
MEAN = "mean intensity"
STD = "pixel std"
PROFILE_COLUMNS = (CLASS, MEAN, STD)
CHUNK_IMAGES = 8192
"""Images per float64 block when computing statistics: about 50 MB, not 60,000 x 784 x 8."""


def image_profile(images: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """One row per image: its class, mean intensity and pixel standard deviation (0..255)."""
    flat = images.reshape(len(images), -1)
    means = np.empty(len(flat), dtype=np.float32)
    stds = np.empty(len(flat), dtype=np.float32)
    for start in range(0, len(flat), CHUNK_IMAGES):
        block = flat[start : start + CHUNK_IMAGES].astype(np.float64)
        means[start : start + len(block)] = block.mean(axis=1)
        stds[start : start + len(block)] = block.std(axis=1)
    return pd.DataFrame({CLASS: labels.astype(np.int64), MEAN: means, STD: stds})


def write_profile(table: Path, indices: Path, target: Path) -> int:
    """Profile the training images at `indices` (`.npy`) of an image table; return rows.

    These are the images the model learned from (the held-out validation images are not).
    """
    images, labels = read_image_table(table)
    kept = np.load(indices)
    profile = image_profile(images[kept], labels[kept])
    write_frame(profile, target)
    return len(profile)


def read_profile(path: Path) -> pd.DataFrame:
    """A profile `write_profile` stored (a version's `reference` artifact)."""
    return pd.read_parquet(path, columns=list(PROFILE_COLUMNS))


def siamese_drift(reference: pd.DataFrame, incoming: pd.DataFrame) -> DriftReport:
    """Class balance and pixel statistics of `incoming` against `reference` profiles."""
    return compare_frames(reference, incoming, PROFILE_COLUMNS, categories=(CLASS,))


def table_drift(table: Path, reference: Path) -> DriftReport:
    """A run's image table (all of it) against a reference profile: the run's drift step."""
    images, labels = read_image_table(table)
    return siamese_drift(read_profile(reference), image_profile(images, labels))
