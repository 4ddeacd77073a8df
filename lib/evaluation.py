"""Metrics and the champion gate: a candidate replaces the champion only on evidence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² of one output."""
    y_true = np.asarray(y_true, dtype="float64").ravel()
    y_pred = np.asarray(y_pred, dtype="float64").ravel()
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(
            "Expected non-empty y_true and y_pred of one shape. "
            f"Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )
    error = y_pred - y_true
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1.0 - float(np.sum(error**2)) / total if total > 0 else float("nan")
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": r2,
    }


@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate becomes champion, and the sentence that says why."""

    promote: bool
    reason: str


@dataclass(frozen=True)
class GatePolicy:
    """How one pipeline's candidates are judged.

    Attributes:
        score: the metric that decides who is better.
        lower_is_better: direction of `score`.
        floors: absolute floors every champion must clear, `{metric: (">=" or "<=", bound)}`.
    """

    score: str
    lower_is_better: bool
    floors: Mapping[str, tuple[str, float]]

    def __post_init__(self) -> None:
        for metric, (direction, _) in self.floors.items():
            if direction not in (">=", "<="):
                raise ValueError(
                    f"Expected a floor direction '>=' or '<='. Received: {metric}={direction!r}"
                )


def champion_gate(
    candidate: Mapping[str, float], champion: Mapping[str, float] | None, policy: GatePolicy
) -> GateDecision:
    """Decide on promotion from metrics computed on the same test data.

    The floors apply always, so a fresh registry does not crown a broken first model.
    """
    for metric, (direction, bound) in policy.floors.items():
        value = candidate[metric]
        ok = value >= bound if direction == ">=" else value <= bound
        if not (ok and np.isfinite(value)):
            return GateDecision(
                False, f"candidate {metric}={value:.4g} fails the floor {direction} {bound:g}"
            )
    score = policy.score
    if champion is None:
        return GateDecision(
            True, f"no champion yet; candidate clears every floor ({score}={candidate[score]:.4g})"
        )
    mine, theirs = candidate[score], champion[score]
    better = mine < theirs if policy.lower_is_better else mine > theirs
    verb = "beats" if better else "does not beat"
    return GateDecision(
        better,
        f"candidate {score}={mine:.4g} {verb} champion {score}={theirs:.4g} on the same test data",
    )


# --- siamese: scores of pairs, labels 1 = same class -------------------------------------


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve, from rank statistics (Mann-Whitney U), ties counted half.

    It is the probability that a random positive scores above a random negative. Higher
    scores must mean "more likely positive": for distances pass ``-distance``.

    Raises:
        ValueError: when labels are not 0/1, lengths differ, a score is not finite, or
            one of the two classes is absent (the area is then undefined).
    """
    labels, scores = _binary_inputs(labels, scores, "scores")
    n_positive, n_negative = _class_counts(labels)
    order = np.argsort(scores, kind="stable")
    _, first, counts = np.unique(scores[order], return_index=True, return_counts=True)
    ranks = np.empty(scores.size)
    # Tied scores share the mean of the 1-based ranks they span.
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    u_statistic = ranks[labels == 1].sum() - n_positive * (n_positive + 1) / 2
    return float(u_statistic / (n_positive * n_negative))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates as the threshold sweeps down over the distinct scores.

    Returns:
        ``(fpr, tpr, thresholds)``: a point per distinct score, plus ``(0, 0)`` at threshold
        ``+inf``; a pair is called positive when its score is ``>= threshold``.

    Raises:
        ValueError: as `roc_auc`.
    """
    labels, scores = _binary_inputs(labels, scores, "scores")
    n_positive, n_negative = _class_counts(labels)
    order = np.argsort(-scores, kind="stable")
    ordered, hits = scores[order], labels[order]
    # The last position of each run of equal scores: one curve point per distinct threshold.
    ends = np.r_[np.flatnonzero(np.diff(ordered)), ordered.size - 1]
    true_positives = np.cumsum(hits)[ends]
    false_positives = ends + 1 - true_positives
    fpr = np.r_[0.0, false_positives / n_negative]
    tpr = np.r_[0.0, true_positives / n_positive]
    return fpr, tpr, np.r_[np.inf, ordered[ends]]


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
    with a zero denominator is reported as 0, as scikit-learn does by default.

    Raises:
        ValueError: when labels are not 0/1, lengths differ, a distance or the threshold is
            not finite.
    """
    labels, distances = _binary_inputs(labels, distances, "distances")
    if not np.isfinite(threshold):
        raise ValueError(f"Expected a finite threshold. Received: threshold={threshold}")
    same = distances < threshold
    positive = labels == 1
    true_positives = int(np.sum(same & positive))
    called_same, truly_same = int(same.sum()), int(positive.sum())
    precision = true_positives / called_same if called_same else 0.0
    recall = true_positives / truly_same if truly_same else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": float(np.mean(same == positive)),
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
