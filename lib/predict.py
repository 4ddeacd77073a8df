"""Predictions with the registry's champion, as the CLI and any script would make them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from lib.registry import CHAMPION_ALIAS
from lib.settings import load_settings


def load_champion(name: str) -> Any:
    """The champion of `name` as an MLflow pyfunc model, with a clear error if there is none."""
    import mlflow
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    uri = load_settings().tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        return mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION_ALIAS}")
    except MlflowException as error:
        raise LookupError(
            f"no '{CHAMPION_ALIAS}' version of model '{name}' in the registry at {uri}; "
            f"run `trainflow run` first ({error.message.splitlines()[0]})"
        ) from error


def predict_siamese(left: Path, right: Path, *, invert: bool = False) -> tuple[float, bool]:
    """Distance between two images (any size, PNG/JPEG) and the champion's same/different."""
    from lib.images import load_image_28x28

    frame = pd.DataFrame(
        {
            side: [load_image_28x28(path, invert=invert).reshape(-1).tolist()]
            for side, path in (("left", left), ("right", right))
        }
    )
    result = load_champion("fashion-siamese").predict(frame)
    return float(result["distance"].iloc[0]), bool(result["same"].iloc[0])


def predict_energy(path: Path) -> pd.DataFrame:
    """Read X1..X8 from `path` (.xlsx, .csv, .parquet), validate, predict Y1 and Y2."""
    from lib.tabular import read_feature_table

    features = read_feature_table(path)
    predicted = load_champion("energy-efficiency").predict(features)
    return pd.concat([features.reset_index(drop=True), predicted.reset_index(drop=True)], axis=1)
