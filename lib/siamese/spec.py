"""The Fashion-MNIST siamese model as the registry and the flows see it: one `ModelSpec`."""

from __future__ import annotations

from lib.core.model_spec import ModelSpec
from lib.siamese.constants import GATE, MODEL_NAME, PIPELINE, THRESHOLD_KEY, THRESHOLD_TAG
from lib.siamese.recipes import PRESETS

SPEC = ModelSpec(
    pipeline=PIPELINE,
    name=MODEL_NAME,
    gate=GATE,
    python_model="lib.siamese.pyfunc_model",
    presets=PRESETS,
    scorer="lib.siamese.evaluate:score_pyfunc",
    serving_signature="lib.siamese.serving:serving_signature",
    model_config={THRESHOLD_KEY: "threshold"},
    version_tags={THRESHOLD_TAG: "threshold"},
)
