"""trainflow's custom Keras objects, all registered under the package name "trainflow".

Importing this package registers every object, so a saved `.keras` model that uses them loads
with `keras.saving.load_model(path, safe_mode=True)` and no `custom_objects`.
"""

from lib.components.encoding import TabularEncoder
from lib.components.layers import EuclideanDistance, Quadratic, SimpleDense
from lib.components.losses import (
    ContrastiveLoss,
    HuberLoss,
    contrastive_loss,
    huber_loss,
    huber_with_threshold,
)
from lib.components.metrics import DistanceAccuracy, distance_accuracy

__all__ = [
    "ContrastiveLoss",
    "DistanceAccuracy",
    "EuclideanDistance",
    "HuberLoss",
    "Quadratic",
    "SimpleDense",
    "TabularEncoder",
    "contrastive_loss",
    "distance_accuracy",
    "huber_loss",
    "huber_with_threshold",
]
