"""The energy model as an MLflow pyfunc: what `mlflow.pyfunc.load_model("models:/...")` gives.

It loads the `.keras` file saved by training and speaks pandas: raw X1..X8 in, Y1 and Y2 out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from lib.core.keras_files import load_model
from lib.core.registry import KERAS_ARTIFACT
from lib.energy.constants import FEATURES, TARGETS


class EnergyPyfunc(PythonModel):
    """DataFrame with columns X1..X8 in raw units -> DataFrame with columns Y1, Y2."""

    def load_context(self, context: Any) -> None:
        self._model = load_model(context.artifacts[KERAS_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
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
