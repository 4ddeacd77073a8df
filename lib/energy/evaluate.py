"""Score an energy model on the test rows: metrics, and the plots a person looks at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lib.core.evaluation import Evaluated
from lib.core.faults import fault_point
from lib.core.keras_files import load_model
from lib.core.plots import learning_curves
from lib.energy.constants import FEATURES, PREDICTED, TARGETS
from lib.energy.metrics import flat_metrics
from lib.energy.plots import predicted_vs_actual
from lib.energy.splits import load_part


def predict_loads(model: Any, features: np.ndarray) -> np.ndarray:
    """Predictions of a Keras energy model as an ``(n, 2)`` array of Y1, Y2."""
    y1, y2 = model.predict(features, verbose=0)
    return np.column_stack([np.ravel(y1), np.ravel(y2)])


def evaluate_energy(
    model_path: Path, history_path: Path, table: Path, split: Path, folder: Path
) -> Evaluated:
    """Metrics on the split's test rows; predicted-vs-actual and learning curves in `folder`."""
    x_test, y_test = load_part(table, split, "test")
    predicted = predict_loads(load_model(model_path), x_test)
    fault_point("evaluate")
    history = json.loads(Path(history_path).read_text())
    plots = (
        predicted_vs_actual(
            {name: y_test[:, i] for i, name in enumerate(TARGETS)},
            {name: predicted[:, i] for i, name in enumerate(TARGETS)},
            folder / "predicted-vs-actual.png",
        ),
        learning_curves(history, folder / "learning-curves.png"),
    )
    return Evaluated(metrics=flat_metrics(y_test, predicted), test_rows=len(y_test), plots=plots)


def score_pyfunc(pyfunc: Any, table: Path, split: Path) -> dict[str, float]:
    """Metrics of a registered model (an MLflow pyfunc) on the same test rows."""
    x_test, y_test = load_part(table, split, "test")
    predicted = pyfunc.predict(pd.DataFrame(x_test, columns=list(FEATURES)))
    return flat_metrics(y_test, predicted[list(PREDICTED)].to_numpy())
