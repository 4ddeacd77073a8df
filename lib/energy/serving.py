"""The energy model as an MLflow pyfunc: what `mlflow.pyfunc.load_model("models:/...")` gives.

It loads the `.keras` file saved by training and speaks pandas: raw X1..X8 in; the predicted
loads, and whether each building lies in the training domain (`lib.energy.domain`), out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from lib.core.keras_files import load_model
from lib.core.registry import KERAS_ARTIFACT, REFERENCE_ARTIFACT
from lib.core.serving import DOMAIN_NOTE, IN_DOMAIN, ServingInputError, predict_rows
from lib.energy.constants import EXAMPLE_BUILDING, FEATURES, PREDICTED
from lib.energy.domain import EnergyDomain


class EnergyPyfunc(PythonModel):
    """DataFrame with columns X1..X8 in raw units -> Y1_predicted, Y2_predicted, domain flags.

    Output, on the input's index: `PREDICTED` (heating and cooling load, kWh/m²),
    ``in_domain`` (True, False, or None for a version without training rows) and
    ``domain_note`` (why a row is outside, "" when inside).
    """

    def load_context(self, context: Any) -> None:
        self._model = load_model(context.artifacts[KERAS_ARTIFACT])
        reference = context.artifacts.get(REFERENCE_ARTIFACT)
        self._domain = (
            EnergyDomain.from_training_rows(pd.read_parquet(reference, columns=list(FEATURES)))
            if reference
            else EnergyDomain.schema_only()
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        missing = [name for name in FEATURES if name not in model_input.columns]
        if missing:
            raise ServingInputError(
                f"Expected columns {', '.join(FEATURES)}. Received: columns="
                f"{list(model_input.columns)} (missing {', '.join(missing)})"
            )
        features = model_input[list(FEATURES)]
        _require_finite(features)
        loads = (
            predict_rows(self._model, features.to_numpy(dtype="float32"), len(features))
            if len(features)
            else [np.empty(0), np.empty(0)]
        )
        predicted = pd.DataFrame(
            dict(zip(PREDICTED, (np.ravel(load).astype("float64") for load in loads), strict=True)),
            index=model_input.index,
        )
        return pd.concat([predicted, self._domain.check(features)], axis=1)


def _require_finite(features: pd.DataFrame) -> None:
    """A missing (null) or infinite value gets no prediction: name its first row and column."""
    values = features.to_numpy(dtype="float64")
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = (int(axis[0]) for axis in np.nonzero(bad))
        raise ServingInputError(
            f"row {features.index[row]!r}, column '{features.columns[column]}': Expected a "
            f"finite number. Received: {values[row, column]}"
        )


def serving_signature() -> tuple[Any, pd.DataFrame]:
    """The signature and input example registered with every energy version.

    MLflow's scoring server checks each request against the signature before the model sees
    it, so a missing column or a text cell gets MLflow's schema error. Columns are doubles:
    JSON integers (``"X6": 4``) convert to them safely.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    signature = ModelSignature(
        inputs=Schema([ColSpec("double", name) for name in FEATURES]),
        outputs=Schema(
            [
                *(ColSpec("double", name) for name in PREDICTED),
                ColSpec("boolean", IN_DOMAIN, required=False),
                ColSpec("string", DOMAIN_NOTE),
            ]
        ),
    )
    return signature, pd.DataFrame([EXAMPLE_BUILDING], columns=list(FEATURES))
