"""Siamese evaluation: metrics of distances by hand, calibration on validation pairs only."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lib.siamese.evaluate import (
    PAIR_METRICS,
    calibrated_metrics,
    pair_distances,
    pair_metrics,
)
from lib.siamese.pairs import Pairs

LABELS = np.array([1, 1, 0, 0])
DISTANCES = np.array([0.1, 0.7, 0.6, 0.9])


def test_pair_metrics_by_hand() -> None:
    metrics = pair_metrics(LABELS, DISTANCES, threshold=0.65)
    # Called same: 0.1 and 0.6 -> one true same, one false same; 0.7 is a missed same.
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["precision"] == pytest.approx(0.5) and metrics["recall"] == pytest.approx(0.5)
    assert metrics["accuracy_at_0.5"] == pytest.approx(0.75)  # only 0.7 is wrong at 0.5
    assert metrics["roc_auc"] == pytest.approx(0.75)  # 3 of the 4 same/different orders right
    assert metrics["threshold"] == 0.65
    # What a diverged trial's validation reports instead: the same names, every one NaN.
    assert tuple(metrics) == PAIR_METRICS


class MeanPixelDistance:
    """A stand-in model: the distance of a pair is the gap between its images' mean pixels."""

    def predict(self, dataset: Any, verbose: int = 0) -> np.ndarray:
        out = [
            np.abs(
                batch["left"].numpy().mean(axis=(1, 2)) - batch["right"].numpy().mean(axis=(1, 2))
            )
            for batch, _ in dataset
        ]
        return np.concatenate(out)


def _images(levels: list[float]) -> np.ndarray:
    return np.stack([np.full((28, 28), level, dtype="uint8") for level in levels])


def test_pair_distances_follow_the_model() -> None:
    images = _images([0, 10, 200])
    pairs = Pairs(
        left=np.array([0, 0], dtype="int32"),
        right=np.array([1, 2], dtype="int32"),
        label=np.array([1, 0], dtype="uint8"),
    )
    np.testing.assert_allclose(pair_distances(MeanPixelDistance(), images, pairs), [10, 200])


def test_the_threshold_comes_from_validation_pairs_not_test_pairs() -> None:
    images = _images([0, 10, 200, 40])
    validation = Pairs(
        left=np.array([0, 0], dtype="int32"),
        right=np.array([1, 2], dtype="int32"),
        label=np.array([1, 0], dtype="uint8"),
    )
    # At the validation cut (105) the test pair at distance 40 counts as "same", truly not.
    test = Pairs(
        left=np.array([0, 0], dtype="int32"),
        right=np.array([1, 3], dtype="int32"),
        label=np.array([1, 0], dtype="uint8"),
    )
    metrics, distances = calibrated_metrics(MeanPixelDistance(), images, validation, images, test)
    assert metrics["threshold"] == pytest.approx(105)
    assert metrics["accuracy"] == pytest.approx(0.5)
    np.testing.assert_allclose(distances, [10, 40])
