"""Heating and cooling loads for a user's table of buildings, from the champion."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lib.core.champion import load_champion
from lib.energy.constants import MODEL_NAME
from lib.energy.table import read_feature_table


def predict_energy(path: Path) -> pd.DataFrame:
    """Read X1..X8 from `path` (.xlsx, .csv, .parquet), validate, predict Y1 and Y2."""
    features = read_feature_table(path)
    predicted = load_champion(MODEL_NAME).predict(features)
    return pd.concat([features.reset_index(drop=True), predicted.reset_index(drop=True)], axis=1)
