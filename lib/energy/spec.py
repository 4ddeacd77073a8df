"""The energy-efficiency model as the registry and the flows see it: one `ModelSpec`."""

from __future__ import annotations

from lib.core.model_spec import ModelSpec
from lib.energy.constants import GATE, MODEL_NAME, PIPELINE
from lib.energy.recipes import PRESETS

SPEC = ModelSpec(
    pipeline=PIPELINE,
    name=MODEL_NAME,
    gate=GATE,
    python_model="lib.energy.pyfunc_model",
    presets=PRESETS,
    scorer="lib.energy.evaluate:score_pyfunc",
    serving_signature="lib.energy.serving:serving_signature",
)
