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
    description=(
        "Tells whether two Fashion-MNIST images show the same kind of article (a siamese "
        "network trained on 28x28 grayscale images). Input: a table with columns `left` and "
        "`right`, each cell 784 pixel values 0-255 (light garment on black). Output: "
        "`distance` between the two embeddings and `same`, true when the distance is below "
        f"the threshold calibrated on validation pairs (tag {THRESHOLD_TAG}), `in_domain` "
        "(false when an image does not look like Fashion-MNIST) and `domain_note` (why)."
    ),
)
