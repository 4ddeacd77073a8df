"""Test metrics of the energy model: RMSE, MAE and R² per output, and their mean RMSE."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from lib.energy.constants import TARGETS

MEAN_RMSE = "mean_rmse"


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² of one output (R² is NaN when the truth is constant).

    A model whose training diverged predicts NaN or infinity; its metrics are then all NaN
    rather than an error, so a sweep goes on to its other trials and picks none of these,
    and the champion gate refuses it (`lib.core.gate`).

    Raises:
        ValueError: when the two are empty or differ in shape.
    """
    y_true = np.asarray(y_true, dtype="float64").ravel()
    y_pred = np.asarray(y_pred, dtype="float64").ravel()
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(
            "Expected non-empty y_true and y_pred of one shape. "
            f"Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )
    if not np.isfinite(y_pred).all():
        return dict.fromkeys(("rmse", "mae", "r2"), float("nan"))
    constant = bool(np.all(y_true == y_true[0]))
    return {
        "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float("nan") if constant else float(r2_score(y_true, y_pred)),
    }


def flat_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, targets: Sequence[str] = TARGETS
) -> dict[str, float]:
    """`{"Y1_rmse": ..., "Y2_r2": ..., "mean_rmse": ...}` for ``(n, len(targets))`` arrays."""
    metrics: dict[str, float] = {}
    for i, name in enumerate(targets):
        for metric, value in regression_metrics(y_true[:, i], y_pred[:, i]).items():
            metrics[f"{name}_{metric}"] = value
    metrics[MEAN_RMSE] = float(np.mean([metrics[f"{name}_rmse"] for name in targets]))
    return metrics
