"""Energy test metrics: per output by hand, and flattened over both outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lib.energy.metrics import MEAN_RMSE, flat_metrics, regression_metrics


def test_regression_metrics_hand_computed() -> None:
    # errors 0, 0, 0, 2: mse 4/4 = 1; mae 2/4; total sum of squares around mean 2.5 is
    # 2.25 + 0.25 + 0.25 + 2.25 = 5 against 4 for the errors, so r2 = 1 - 4/5.
    metrics = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 6.0]))
    assert metrics == pytest.approx({"rmse": 1.0, "mae": 0.5, "r2": 0.2})


def test_regression_metrics_with_errors_of_both_signs() -> None:
    # errors 1, -2, 2: mse 9/3 = 3; mae 5/3; mean 4, total 9 + 0 + 9 = 18, r2 = 1 - 9/18.
    metrics = regression_metrics(np.array([1.0, 4.0, 7.0]), np.array([2.0, 2.0, 9.0]))
    assert metrics == pytest.approx({"rmse": math.sqrt(3.0), "mae": 5 / 3, "r2": 0.5})


def test_regression_metrics_accept_a_column_against_a_flat_vector() -> None:
    metrics = regression_metrics(np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 2.0, 3.0]))
    assert metrics == pytest.approx({"rmse": 0.0, "mae": 0.0, "r2": 1.0})


def test_r2_is_nan_for_constant_truth() -> None:
    metrics = regression_metrics(np.array([5.0, 5.0, 5.0]), np.array([5.0, 6.0, 4.0]))
    assert math.isnan(metrics["r2"])
    assert metrics["mae"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_diverged_models_predictions_give_nan_metrics_not_an_error(bad: float) -> None:
    metrics = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, bad, 3.0]))
    assert set(metrics) == {"rmse", "mae", "r2"}
    assert all(math.isnan(value) for value in metrics.values())


def test_regression_metrics_reject_a_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"y_true.shape=\(3,\), y_pred.shape=\(2,\)"):
        regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0]))


def test_regression_metrics_reject_empty_inputs() -> None:
    with pytest.raises(ValueError, match=r"Expected non-empty.*y_true.shape=\(0,\)"):
        regression_metrics(np.array([]), np.array([]))


def test_flat_metrics_names_each_output_and_averages_rmse() -> None:
    y_true = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    y_pred = np.array([[1.0, 13.0], [2.0, 17.0], [3.0, 30.0]])
    metrics = flat_metrics(y_true, y_pred)
    assert metrics["Y1_rmse"] == pytest.approx(0.0)
    assert metrics["Y2_rmse"] == pytest.approx(np.sqrt(6.0))
    assert metrics["Y2_mae"] == pytest.approx(2.0)
    assert metrics[MEAN_RMSE] == pytest.approx(np.sqrt(6.0) / 2)
    assert sorted(metrics) == sorted(
        [f"{t}_{m}" for t in ("Y1", "Y2") for m in ("rmse", "mae", "r2")] + [MEAN_RMSE]
    )
