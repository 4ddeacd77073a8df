"""MLflow pyfunc wrappers: what `mlflow.pyfunc.load_model("models:/...")` hands a user.

Each wrapper loads the `.keras` file saved by training (custom objects resolve through the
`trainflow` registration once `lib.components` is imported) and speaks pandas.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

KERAS_ARTIFACT = "keras_model"


def _load_keras(path: str) -> Any:
    import keras

    import lib.components  # noqa: F401  registers the trainflow custom objects

    return keras.saving.load_model(path, safe_mode=True)


class EnergyPyfunc(PythonModel):
    """DataFrame with columns X1..X8 in raw units -> DataFrame with columns Y1, Y2."""

    def load_context(self, context: Any) -> None:
        self._model = _load_keras(context.artifacts[KERAS_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        from lib.energy_model import FEATURES, TARGETS

        missing = [name for name in FEATURES if name not in model_input.columns]
        if missing:
            raise ValueError(
                f"Expected columns {', '.join(FEATURES)}. Received: columns="
                f"{list(model_input.columns)} (missing {', '.join(missing)})"
            )
        features = model_input[list(FEATURES)].to_numpy(dtype="float32")
        y1, y2 = self._model.predict(features, verbose=0)
        return pd.DataFrame(
            {TARGETS[0]: np.ravel(y1), TARGETS[1]: np.ravel(y2)}, index=model_input.index
        )


THRESHOLD_KEY = "threshold"
PAIR_COLUMNS = ("left", "right")
IMAGE_SHAPE = (28, 28)
PIXELS_PER_IMAGE = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
MAX_PIXEL = 255


class SiamesePyfunc(PythonModel):
    """DataFrame of image pairs -> DataFrame with `distance` and `same`.

    Input: columns `left` and `right`, each cell a sequence of 784 raw pixel values 0..255
    (a 28x28 image, row-major, Fashion-MNIST's light-on-black); extra columns are ignored.
    Output: `distance` (float) and `same` (bool, ``distance < threshold``), on the input's
    index.

    The threshold comes from ``model_config["threshold"]`` given to `mlflow.pyfunc.log_model`:
    the registered one is the threshold calibrated on validation pairs (not the 0.5 the
    network was trained against). It is written in the MLmodel file for anyone to read, and
    ``mlflow.pyfunc.load_model(uri, model_config={"threshold": t})`` overrides it at load.
    """

    def load_context(self, context: Any) -> None:
        config = context.model_config or {}
        if THRESHOLD_KEY not in config:
            raise ValueError(
                f"Expected model_config to hold '{THRESHOLD_KEY}' (the calibrated distance "
                f"threshold). Received: model_config={config!r}"
            )
        self._threshold = _finite_threshold(config[THRESHOLD_KEY])
        self._model = _load_keras(context.artifacts[KERAS_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        missing = [name for name in PAIR_COLUMNS if name not in model_input.columns]
        if missing:
            raise ValueError(
                f"Expected columns {', '.join(PAIR_COLUMNS)}. Received: columns="
                f"{list(model_input.columns)} (missing {', '.join(missing)})"
            )
        images = {name: _pixel_column(model_input, name) for name in PAIR_COLUMNS}
        if len(model_input):
            distance = np.ravel(self._model.predict(images, verbose=0)).astype("float64")
        else:
            distance = np.empty(0)
        return pd.DataFrame(
            {"distance": distance, "same": distance < self._threshold}, index=model_input.index
        )


def _finite_threshold(value: Any) -> float:
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not np.isfinite(threshold) or threshold <= 0:
        raise ValueError(
            f"Expected a finite '{THRESHOLD_KEY}' > 0 in model_config. "
            f"Received: {THRESHOLD_KEY}={value!r}"
        )
    return threshold


def _pixel_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Stack one column's cells into ``(n, 28, 28)`` float32, naming the first bad cell."""
    stacked = np.empty((len(frame), PIXELS_PER_IMAGE), dtype="float32")
    for position, (row, cell) in enumerate(frame[column].items()):
        where = f"row {row!r}, column '{column}'"
        try:
            pixels = np.asarray(cell, dtype="float64")
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"{where}: Expected a sequence of {PIXELS_PER_IMAGE} numbers. Received: {error}"
            ) from error
        if pixels.shape != (PIXELS_PER_IMAGE,):
            raise ValueError(
                f"{where}: Expected a sequence of {PIXELS_PER_IMAGE} pixel values (28x28, "
                f"row-major). Received: shape={pixels.shape}"
            )
        outside = ~((pixels >= 0) & (pixels <= MAX_PIXEL))  # NaN counts as outside
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            raise ValueError(
                f"{where}: Expected pixel values in 0..{MAX_PIXEL}. "
                f"Received: {pixels[first]} at pixel {first}"
            )
        stacked[position] = pixels
    return stacked.reshape(-1, *IMAGE_SHAPE)
