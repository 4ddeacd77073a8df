"""The siamese model as an MLflow pyfunc: image pairs in, distance and same/different out.

It loads the `.keras` file saved by training; the distance threshold travels in the pyfunc's
`model_config`, so the registered model and its threshold cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from lib.core.keras_files import load_model
from lib.core.registry import KERAS_ARTIFACT
from lib.core.serving import DOMAIN_NOTE, IN_DOMAIN, ServingInputError, predict_rows
from lib.siamese.constants import (
    IMAGE_SHAPE,
    LEFT,
    MAX_PIXEL,
    PIXELS_PER_IMAGE,
    RIGHT,
    THRESHOLD_KEY,
)
from lib.siamese.domain import check_pairs


class SiamesePyfunc(PythonModel):
    """DataFrame of image pairs -> DataFrame with `distance` and `same`.

    Input: columns `left` and `right`, each cell a sequence of 784 raw pixel values 0..255
    (a 28x28 image, row-major, Fashion-MNIST's light-on-black); extra columns are ignored.
    Output: `distance` (float), `same` (bool, ``distance < threshold``), ``in_domain``
    and ``domain_note`` (`lib.siamese.domain`: a light background is not Fashion-MNIST-like),
    on the input's index. Unusable cells raise `ServingInputError` (HTTP 400, no trace).

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
        self._model = load_model(context.artifacts[KERAS_ARTIFACT])

    @property
    def keras_model(self) -> Any:
        """The loaded Keras model, for callers that feed it image arrays directly."""
        return self._model

    @property
    def threshold(self) -> float:
        """The distance below which this model calls a pair "same"."""
        return self._threshold

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        missing = [name for name in (LEFT, RIGHT) if name not in model_input.columns]
        if missing:
            raise ServingInputError(
                f"Expected columns {', '.join((LEFT, RIGHT))}. Received: columns="
                f"{list(model_input.columns)} (missing {', '.join(missing)})"
            )
        images = {name: _pixel_column(model_input, name) for name in (LEFT, RIGHT)}
        if len(model_input):
            [distance] = predict_rows(self._model, images, len(model_input))
            distance = np.ravel(distance).astype("float64")
        else:
            distance = np.empty(0)
        scored = pd.DataFrame(
            {"distance": distance, "same": distance < self._threshold}, index=model_input.index
        )
        return pd.concat([scored, check_pairs(images, model_input.index)], axis=1)


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
            raise ServingInputError(
                f"{where}: Expected a sequence of {PIXELS_PER_IMAGE} numbers. Received: {error}"
            ) from error
        if pixels.shape != (PIXELS_PER_IMAGE,):
            raise ServingInputError(
                f"{where}: Expected a sequence of {PIXELS_PER_IMAGE} pixel values (28x28, "
                f"row-major). Received: shape={pixels.shape}"
            )
        outside = ~((pixels >= 0) & (pixels <= MAX_PIXEL))  # NaN counts as outside
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            raise ServingInputError(
                f"{where}: Expected pixel values in 0..{MAX_PIXEL:g}. "
                f"Received: {pixels[first]} at pixel {first}"
            )
        stacked[position] = pixels
    return stacked.reshape(-1, *IMAGE_SHAPE)


def serving_signature() -> tuple[Any, pd.DataFrame]:
    """The signature and input example registered with every siamese version.

    Both columns are required; their cells are typed `Any`: MLflow's `Array(double)` refuses
    JSON integers over HTTP ("Can not safely convert int64 to float64"), and pixels are
    integers more often than not. `predict` checks each cell (784 numbers in 0..255) and names
    the first bad one. The example is one pair: the same bright square on black, twice.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    signature = ModelSignature(
        inputs=Schema([ColSpec(AnyType(), name) for name in (LEFT, RIGHT)]),
        outputs=Schema(
            [
                ColSpec("double", "distance"),
                ColSpec("boolean", "same"),
                ColSpec("boolean", IN_DOMAIN),
                ColSpec("string", DOMAIN_NOTE),
            ]
        ),
    )
    image = np.zeros(IMAGE_SHAPE)
    image[8:20, 8:20] = MAX_PIXEL
    pixels = image.reshape(-1).tolist()
    return signature, pd.DataFrame({LEFT: [pixels], RIGHT: [pixels]})
