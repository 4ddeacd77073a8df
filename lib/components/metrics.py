"""Metrics of a distance output, safe to save and reload like the losses beside them."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lib.components.losses import PACKAGE, positive_float, to_same_rank

DEFAULT_DISTANCE_THRESHOLD = 0.5


def distance_accuracy(
    y_true: Any, y_pred: Any, threshold: float = DEFAULT_DISTANCE_THRESHOLD
) -> Any:
    """Per-pair accuracy of the rule "same class iff distance < threshold".

    Label convention: `y_true` is 1 for a same-class pair, 0 otherwise; `y_pred` is the
    distance. Keras' `BinaryAccuracy` predicts 1 when the output is *above* its threshold,
    the opposite of what a distance means, hence this metric.

    Returns:
        1.0 or 0.0 per pair (the mean over the last axis); Keras averages them.
    """
    y_true, y_pred = to_same_rank(y_true, y_pred)
    same = ops.cast(ops.less(y_pred, threshold), y_pred.dtype)
    return ops.mean(ops.cast(ops.equal(y_true, same), y_pred.dtype), axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DistanceAccuracy(keras.metrics.MeanMetricWrapper):
    """Accuracy of a siamese network that calls a pair "same" when its distance < threshold.

    Label convention: 1 = same class, 0 = different class; predictions are distances.

    Args:
        threshold: distance below which a pair counts as same-class. With a contrastive
            margin `m`, `m / 2` sits halfway between where the loss pulls positives (0) and
            where it stops pushing negatives (`m`); the course uses 0.5 with `m = 1`.
        name: name of the metric (and of its entry in the training history).
        dtype: dtype of the metric's state.

    Higher is better: a callback that monitors it (``EarlyStopping(monitor="val_accuracy")``)
    needs ``mode="max"``, since Keras infers the direction only from its own metrics.
    """

    def __init__(
        self,
        threshold: float = DEFAULT_DISTANCE_THRESHOLD,
        name: str = "accuracy",
        dtype: Any = None,
    ) -> None:
        self.threshold = positive_float("threshold", threshold)
        super().__init__(fn=distance_accuracy, name=name, dtype=dtype, threshold=self.threshold)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "threshold": self.threshold}
