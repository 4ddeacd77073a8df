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
    description=(
        "Predicts a building's heating load Y1 and cooling load Y2 (kWh/m²) from its eight "
        "design features, trained on the UCI ENB2012 data. Input: a table with columns X1..X8 "
        "in the workbook's units (relative compactness, surface, wall and roof areas, overall "
        "height, orientation code 2-5, glazing area, glazing distribution code 0-5); other "
        "columns are ignored. Output, one row per input row: Y1_predicted and Y2_predicted, "
        "in_domain (false when an input lies outside what the model was trained on) and "
        "domain_note (why)."
    ),
    serving_signature="lib.energy.serving:serving_signature",
)
