"""Score a trained energy model on its split's validation rows: what a sweep picks by.

The test rows judge only the sweep's winner (and the champion gate); choosing among trials
on them would let the choice itself fit the test rows. The stages it calls are imported in
the function: flows read `SCORE` without starting what they import.
"""

from __future__ import annotations

from pathlib import Path

from lib.core.sweep import ValidationScore

SCORE = ValidationScore("mean_rmse", lower_is_better=True)  # lib.energy.metrics.MEAN_RMSE
"""The mean of the Y1 and Y2 RMSE: both loads count, in the same kWh/m² units."""


def validation_metrics(model_path: Path, table: Path, split: Path) -> dict[str, float]:
    """RMSE, MAE and R² per output and their mean RMSE on the split's validation rows."""
    from lib.core.keras_files import load_model
    from lib.energy.evaluate import predict_loads
    from lib.energy.metrics import flat_metrics
    from lib.energy.splits import load_part

    features, loads = load_part(table, split, "validation")
    return flat_metrics(loads, predict_loads(load_model(model_path), features))
