"""Scores of pairs (label 1 = same class): ROC, accuracy at a threshold, threshold calibration.

scikit-learn computes the standard metrics; the input checks in front of it turn a bad array
into one message that names what is wrong, and `calibrate_threshold`, which scikit-learn has
no counterpart for, is written here.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score
from sklearn.metrics import roc_curve as sklearn_roc_curve


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random positive scores above a random negative.

    Higher scores must mean "more likely positive": for distances pass ``-distance``.

    Raises:
        ValueError: when labels are not 0/1, lengths differ, a score is not finite, or
            one of the two classes is absent (the area is then undefined).
    """
    labels, scores = _binary_inputs(labels, scores, "scores")
    _class_counts(labels)
    return float(roc_auc_score(labels, scores))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates as the threshold sweeps down over the distinct scores.

    Returns:
        ``(fpr, tpr, thresholds)``: a point per distinct score, plus ``(0, 0)`` at threshold
        ``+inf``; a pair is called positive when its score is ``>= threshold``.

    Raises:
        ValueError: as `roc_auc`.
    """
    labels, scores = _binary_inputs(labels, scores, "scores")
    _class_counts(labels)
    fpr, tpr, thresholds = sklearn_roc_curve(labels, scores, drop_intermediate=False)
    return fpr, tpr, thresholds


def calibrate_threshold(labels: np.ndarray, distances: np.ndarray) -> float:
    """The distance threshold that maximises accuracy of "same iff distance < threshold".

    Meant for validation pairs: the threshold is then applied, unchanged, to test pairs.
    Every cut between two consecutive distinct distances is tried at once (cumulative sums
    over the sorted distances); the threshold returned is the midpoint of the best gap, the
    smallest such gap when several tie.

    Raises:
        ValueError: when labels are not 0/1, lengths differ, or a distance is not finite.
    """
    labels, distances = _binary_inputs(labels, distances, "distances")
    order = np.argsort(distances, kind="stable")
    ordered, hits = distances[order], labels[order]
    n_negative = hits.size - int(hits.sum())
    # Cut k calls the first `k` sorted pairs "same": it may only fall between distinct values.
    cuts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1, ordered.size]
    same_below = np.r_[0, np.cumsum(hits)]
    different_below = np.arange(ordered.size + 1) - same_below
    correct = same_below[cuts] + n_negative - different_below[cuts]
    best = int(cuts[np.argmax(correct)])
    if best == 0:
        return float(ordered[0])
    if best == ordered.size:
        return float(np.nextafter(ordered[-1], np.inf))
    return float((ordered[best - 1] + ordered[best]) / 2)


def classification_metrics(
    labels: np.ndarray, distances: np.ndarray, threshold: float
) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of "same class iff distance < threshold".

    "Same" is the positive class. Precision (no pair called same) or recall (no same pair)
    with a zero denominator is reported as 0.

    Raises:
        ValueError: when labels are not 0/1, lengths differ, a distance or the threshold is
            not finite.
    """
    labels, distances = _binary_inputs(labels, distances, "distances")
    if not np.isfinite(threshold):
        raise ValueError(f"Expected a finite threshold. Received: threshold={threshold}")
    same = (distances < threshold).astype("int64")
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, same, average="binary", pos_label=1, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(labels, same)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }


def _class_counts(labels: np.ndarray) -> tuple[int, int]:
    """Positives and negatives; a ROC needs both, or its rates divide by zero."""
    n_positive = int(labels.sum())
    n_negative = labels.size - n_positive
    if n_positive == 0 or n_negative == 0:
        raise ValueError(
            "Expected both positive and negative labels. "
            f"Received: {n_positive} positives, {n_negative} negatives"
        )
    return n_positive, n_negative


def _binary_inputs(labels: np.ndarray, values: np.ndarray, name: str) -> tuple[np.ndarray, ...]:
    """Flatten and check 0/1 labels against finite values of the same, non-zero length."""
    labels = np.asarray(labels).ravel()
    values = np.asarray(values, dtype="float64").ravel()
    if labels.size == 0 or labels.shape != values.shape:
        raise ValueError(
            f"Expected non-empty labels and {name} of one length. "
            f"Received: labels.shape={labels.shape}, {name}.shape={values.shape}"
        )
    if not np.isin(labels, (0, 1)).all():
        bad = np.flatnonzero(~np.isin(labels, (0, 1)))[0]
        raise ValueError(f"Expected labels 0 or 1. Received: label={labels[bad]} at {bad}")
    if not np.isfinite(values).all():
        bad = np.flatnonzero(~np.isfinite(values))[0]
        raise ValueError(f"Expected finite {name}. Received: {name}[{bad}]={values[bad]}")
    return labels.astype("int64"), values
