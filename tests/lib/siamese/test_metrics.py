"""Siamese metrics by hand: ROC AUC (ties included), ROC curve, threshold calibration."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sklearn_roc_curve

from lib.siamese.metrics import calibrate_threshold, classification_metrics, roc_auc, roc_curve

# The four-point example of scikit-learn's documentation: one of four (positive, negative)
# orderings is wrong (0.35 < 0.4), so the area is 3/4.
LABELS = np.array([0, 0, 1, 1])
SCORES = np.array([0.1, 0.4, 0.35, 0.8])


def test_roc_auc_hand_computed() -> None:
    assert roc_auc(LABELS, SCORES) == pytest.approx(0.75)


def test_roc_auc_counts_ties_as_half() -> None:
    # positives score 0.5, 0.9; negatives 0.5, 0.2. Of the four (pos, neg) pairs,
    # 0.5 vs 0.5 ties (1/2) and the other three are ordered right: 3.5 / 4.
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.2, 0.9])) == pytest.approx(0.875)


def test_roc_auc_of_constant_scores_is_one_half() -> None:
    assert roc_auc(np.array([1, 0, 1, 0, 0]), np.full(5, 3.0)) == pytest.approx(0.5)


def test_roc_auc_perfect_and_reversed() -> None:
    labels = np.array([1, 1, 0, 0])
    distances = np.array([0.1, 0.2, 0.8, 0.9])
    assert roc_auc(labels, -distances) == 1.0
    assert roc_auc(labels, distances) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_matches_sklearn_on_random_data_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=500)
    # Rounded scores: many ties, and shifted for positives so the area is not 1/2.
    scores = np.round(rng.normal(size=500) + 0.8 * labels, 1)
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize(
    ("labels", "scores", "match"),
    [
        (np.array([1, 1]), np.array([0.1, 0.2]), "both positive and negative"),
        (np.array([0, 2]), np.array([0.1, 0.2]), r"labels 0 or 1. Received: label=2 at 1"),
        (np.array([0, 1]), np.array([0.1, np.nan]), r"finite scores. Received: scores\[1\]=nan"),
        (np.array([0, 1, 1]), np.array([0.1, 0.2]), "of one length"),
        (np.array([]), np.array([]), "non-empty"),
    ],
)
def test_roc_auc_rejects_bad_inputs(labels: np.ndarray, scores: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        roc_auc(labels, scores)


def test_roc_curve_hand_computed() -> None:
    # Thresholds sweep down 0.8 (1 TP), 0.4 (+1 FP), 0.35 (+1 TP), 0.1 (+1 FP).
    fpr, tpr, thresholds = roc_curve(LABELS, SCORES)
    np.testing.assert_allclose(fpr, [0.0, 0.0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(thresholds, [np.inf, 0.8, 0.4, 0.35, 0.1])


def test_roc_curve_makes_one_point_per_distinct_score() -> None:
    fpr, tpr, thresholds = roc_curve(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.2, 0.9]))
    np.testing.assert_allclose(thresholds, [np.inf, 0.9, 0.5, 0.2])
    np.testing.assert_allclose(tpr, [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(fpr, [0.0, 0.0, 0.5, 1.0])


def test_roc_curve_matches_sklearn_and_its_area_is_roc_auc() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=300)
    scores = np.round(rng.normal(size=300) + labels, 1)
    fpr, tpr, thresholds = roc_curve(labels, scores)
    want_fpr, want_tpr, want_thresholds = sklearn_roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, want_fpr)
    np.testing.assert_allclose(tpr, want_tpr)
    np.testing.assert_allclose(thresholds[1:], want_thresholds[1:])
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(roc_auc(labels, scores))


def test_calibrate_threshold_hand_computed() -> None:
    # Calling the first k sorted pairs "same" gets 3, 4, 5, 4, 5, 4, 3 of 6 right for
    # k = 0..6. The best, k = 2, cuts between 0.2 and 0.3 (k = 4 ties; the smaller wins).
    distances = np.array([0.6, 0.1, 0.9, 0.3, 0.2, 0.7])
    labels = np.array([1, 1, 0, 0, 1, 0])
    threshold = calibrate_threshold(labels, distances)
    assert threshold == pytest.approx(0.25)
    assert classification_metrics(labels, distances, threshold)["accuracy"] == pytest.approx(5 / 6)


def test_calibrate_threshold_never_splits_tied_distances() -> None:
    # Cutting inside the tie at 0.2 is impossible: the cuts are k = 0 (2 right), k = 2
    # (2 right) and k = 3 (1 right); k = 0 wins, so nothing is called "same".
    threshold = calibrate_threshold(np.array([1, 0, 0]), np.array([0.2, 0.2, 0.5]))
    assert threshold == pytest.approx(0.2)


def test_calibrate_threshold_at_the_extremes() -> None:
    distances = np.array([0.3, 0.1, 0.2])
    above_all = calibrate_threshold(np.array([1, 1, 1]), distances)
    assert above_all > 0.3
    assert classification_metrics(np.array([1, 1, 1]), distances, above_all)["accuracy"] == 1.0
    below_all = calibrate_threshold(np.array([0, 0, 0]), distances)
    assert classification_metrics(np.array([0, 0, 0]), distances, below_all)["accuracy"] == 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_calibrate_threshold_beats_every_other_threshold(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=400)
    distances = np.round(np.abs(rng.normal(size=400) + 1.5 * (1 - labels)), 2)
    best = classification_metrics(labels, distances, calibrate_threshold(labels, distances))
    candidates = np.r_[distances, distances + 0.005, distances.max() + 1]
    brute = max(classification_metrics(labels, distances, t)["accuracy"] for t in candidates)
    assert best["accuracy"] == pytest.approx(brute)


def test_classification_metrics_hand_computed() -> None:
    # Called same: rows 0, 2, 4 (distance < 0.5); truly same: rows 0, 1, 4.
    # TP = 2 (rows 0, 4): precision 2/3, recall 2/3, f1 2/3; rows 0, 3, 4 right: 3/5.
    labels = np.array([1, 1, 0, 0, 1])
    distances = np.array([0.1, 0.6, 0.2, 0.9, 0.3])
    metrics = classification_metrics(labels, distances, 0.5)
    assert metrics == pytest.approx(
        {"accuracy": 0.6, "precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3}
    )


def test_classification_metrics_threshold_is_strict() -> None:
    metrics = classification_metrics(np.array([1]), np.array([0.5]), 0.5)
    assert metrics["accuracy"] == 0.0


def test_classification_metrics_with_zero_denominators_reports_zero() -> None:
    metrics = classification_metrics(np.array([1, 0]), np.array([0.9, 0.8]), 0.5)
    assert metrics == {"accuracy": 0.5, "precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_classification_metrics_rejects_non_finite_threshold() -> None:
    with pytest.raises(ValueError, match="finite threshold. Received: threshold=nan"):
        classification_metrics(np.array([1, 0]), np.array([0.1, 0.8]), float("nan"))
