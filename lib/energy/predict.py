"""Heating and cooling loads for a user's table of buildings, from the champion."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lib.core.champion import load_champion
from lib.energy.constants import MODEL_NAME
from lib.energy.table import read_actual_loads, read_feature_table


def predict_energy(path: Path) -> pd.DataFrame:
    """Read X1..X8 from `path` (.xlsx, .csv, .parquet), validate, predict the loads.

    The result holds the inputs as given (X1..X8, and Y1, Y2 when the file has them), then
    the champion's `Y1_predicted`, `Y2_predicted`, `in_domain` and `domain_note`: actual
    loads are never overwritten by predictions.
    """
    features = read_feature_table(path).reset_index(drop=True)
    actual = read_actual_loads(path, len(features))
    # The registered signature takes doubles; the codes X6 and X8 are read as integers.
    model_input = features.astype("float64")
    predicted = load_champion(MODEL_NAME).predict(model_input).reset_index(drop=True)
    parts = [features, predicted] if actual is None else [features, actual, predicted]
    return pd.concat(parts, axis=1)
