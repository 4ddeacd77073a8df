"""Everything fixed about the Fashion-MNIST siamese model: data, shapes, registry name, gate.

One module holds these so that the flow, the registry tasks, serving and `predict` read the
same values; nothing here imports Keras or MLflow, and no recipe lives here, so a step that
reads a column name is not re-run when a preset changes.
"""

from __future__ import annotations

from lib.core.gate import GatePolicy
from lib.core.remote import RemoteFile

PIPELINE = "siamese"
MODEL_NAME = "fashion-siamese"

IMAGE_SHAPE = (28, 28)
PIXELS_PER_IMAGE = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
MAX_PIXEL = 255.0
NUM_CLASSES = 10
LEFT = "left"
RIGHT = "right"
"""The model's two image inputs, and the pyfunc's two columns."""

EVALUATION_BATCH = 1024
"""Pairs per batch when only predicting (validation during training, evaluation)."""

TRAINED_THRESHOLD = 0.5
"""The course's rule: a pair is "same" when its distance is below half the margin of 1."""
THRESHOLD_TAG = "trainflow.threshold"
"""Model-version tag holding the distance threshold calibrated on validation pairs."""
THRESHOLD_KEY = "threshold"
"""Key of the same threshold in the pyfunc's `model_config`."""

# Better = higher test accuracy at the model's own registered threshold; a champion must
# also rank pairs well (AUC) and beat a coin by a wide margin.
GATE = GatePolicy(
    score="accuracy",
    lower_is_better=False,
    floors={"accuracy": (">=", 0.8), "roc_auc": (">=", 0.85)},
    min_test_rows=50,
)


_PRIMARY = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_SECONDARY = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"


def _fashion(name: str, sha256: str, size: int) -> RemoteFile:
    return RemoteFile(
        name=name,
        mirror_path=f"fashion-mnist/{name}",
        urls=(_PRIMARY + name, _SECONDARY + name),
        sha256=sha256,
        size=size,
    )


TRAIN_IMAGES = _fashion(
    "train-images-idx3-ubyte.gz",
    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    26_421_880,
)
TRAIN_LABELS = _fashion(
    "train-labels-idx1-ubyte.gz",
    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    29_515,
)
TEST_IMAGES = _fashion(
    "t10k-images-idx3-ubyte.gz",
    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    4_422_102,
)
TEST_LABELS = _fashion(
    "t10k-labels-idx1-ubyte.gz",
    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    5_148,
)
