"""Siamese drift: per-image profiles, class balance and brightness shifts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lib.siamese.drift import (
    CLASS,
    MEAN,
    STD,
    image_profile,
    read_profile,
    siamese_drift,
    table_drift,
    write_profile,
)
from lib.siamese.idx import idx_to_parquet
from tests.fixtures.fashion import synthetic_images, write_idx


def test_a_profile_holds_class_mean_and_std_of_each_image() -> None:
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    images[1, :14] = 255  # top half white: mean 127.5, std 127.5
    profile = image_profile(images, np.array([3, 7], dtype=np.uint8))
    assert profile[CLASS].tolist() == [3, 7]
    assert profile[MEAN].tolist() == [0.0, 127.5] and profile[STD].tolist() == [0.0, 127.5]


def test_the_stored_profile_covers_only_the_kept_training_images(tmp_path: Path) -> None:
    images, labels = synthetic_images(per_class=20, seed=1)
    table = tmp_path / "train.parquet"
    idx_to_parquet(
        write_idx(tmp_path / "images.gz", images),
        write_idx(tmp_path / "labels.gz", labels),
        table,
        source_sha256={"images": "0" * 64, "labels": "1" * 64},
        code_version="test",
    )
    kept = np.arange(0, 200, 2)
    np.save(tmp_path / "kept.npy", kept)

    assert write_profile(table, tmp_path / "kept.npy", tmp_path / "profile.parquet") == 100
    stored = read_profile(tmp_path / "profile.parquet")
    assert stored[CLASS].tolist() == labels[kept].tolist()
    assert stored[MEAN].to_numpy() == pytest.approx(images[kept].mean(axis=(1, 2)))
    assert not table_drift(table, tmp_path / "profile.parquet").drifted


def test_a_lost_class_and_brighter_images_are_flagged() -> None:
    images, labels = synthetic_images(per_class=30, seed=1)
    reference = image_profile(images, labels)
    fewer = labels != 0
    brighter = np.clip(images[fewer].astype(int) + 60, 0, 255).astype(np.uint8)
    report = siamese_drift(reference, image_profile(brighter, labels[fewer]))
    assert {CLASS, MEAN} <= set(report.flagged), report.rows()
    assert not siamese_drift(reference, image_profile(*synthetic_images(30, seed=5))).drifted
