"""Huber and contrastive losses, in the forms the course teaches, safe to save and reload.

Each loss is a per-sample function plus a thin `keras.losses.Loss` subclass (the pattern of
Keras' own `losses.py`). The functions return one value per sample, so Keras applies the
reduction and `sample_weight` keeps working. Hyperparameters live in `get_config`, never in
a closure, so a model compiled with any of them reloads with `safe_mode=True` and no
`custom_objects` once `lib.components` is imported.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import keras
from keras import ops

PACKAGE = "trainflow"
DEFAULT_HUBER_THRESHOLD = 1.0
DEFAULT_CONTRASTIVE_MARGIN = 1.0
HALF = 0.5


def positive_float(name: str, value: Any) -> float:
    """Return `value` as a float, or raise in Keras' voice if it is not a finite number > 0.

    Hyperparameters are checked when an object is made, so a bad recipe fails at
    construction rather than as NaN losses in the middle of training.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Expected `{name}` to be a number. Received: {name}={value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"Expected `{name}` to be a finite number > 0. Received: {name}={value!r}")
    return float(value)


def to_same_rank(y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    """Convert to tensors and let labels of shape (batch,) meet predictions of (batch, 1).

    Without this, (batch,) minus (batch, 1) broadcasts to (batch, batch) and the loss is
    silently wrong. Mirrors the rank alignment Keras' own loss functions perform.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
    if true_rank == pred_rank - 1 and y_pred.shape[-1] == 1:
        y_true = ops.expand_dims(y_true, axis=-1)
    elif pred_rank == true_rank - 1 and y_true.shape[-1] == 1:
        y_pred = ops.expand_dims(y_pred, axis=-1)
    return y_true, y_pred


def _dtype_name(dtype: Any) -> str | None:
    """The name of a loss's dtype policy for its config, or `None` to follow floatx.

    Keras' base `Loss.get_config` leaves dtype out; the subclasses keep it so a reloaded loss
    computes in the same precision, and as a name so the config stays JSON.
    """
    return None if dtype is None else str(keras.dtype_policies.get(dtype).name)


def _huber(y_true: Any, y_pred: Any, threshold: float) -> Any:
    y_true, y_pred = to_same_rank(y_true, y_pred)
    error = y_pred - y_true
    abs_error = ops.abs(error)
    small = HALF * ops.square(error)
    large = threshold * abs_error - HALF * threshold**2
    return ops.mean(ops.where(abs_error <= threshold, small, large), axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
def huber_loss(y_true: Any, y_pred: Any) -> Any:
    """Huber loss with threshold 1: quadratic for small errors, linear for large ones.

    Per element: `0.5 * e**2` if `|e| <= 1`, else `|e| - 0.5`, with `e = y_pred - y_true`;
    then the mean over the last axis, as `keras.losses.huber` does.

    Returns:
        One loss value per sample; Keras reduces them (and applies `sample_weight`).
    """
    return _huber(y_true, y_pred, DEFAULT_HUBER_THRESHOLD)


@keras.saving.register_keras_serializable(package=PACKAGE)
class HuberLoss(keras.losses.Loss):
    """Huber loss with a configurable threshold (Keras calls it `delta`).

    Per element: `0.5 * e**2` if `|e| <= threshold`, else
    `threshold * |e| - 0.5 * threshold**2`; then the mean over the last axis.

    Args:
        threshold: where the loss turns from quadratic to linear; errors beyond it pull
            with constant force, so outliers cannot dominate training.
        name: optional name for the loss instance.
        reduction: how Keras reduces the per-sample values (default `"sum_over_batch_size"`).
        dtype: dtype of the computation; `None` means `keras.backend.floatx()`.
    """

    def __init__(
        self,
        threshold: float = DEFAULT_HUBER_THRESHOLD,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        self.threshold = positive_float("threshold", threshold)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._dtype_name = _dtype_name(dtype)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return _huber(y_true, y_pred, self.threshold)

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "threshold": self.threshold}
        config.setdefault("dtype", self._dtype_name)
        return config


def huber_with_threshold(threshold: float) -> HuberLoss:
    """The course's loss factory: a Huber loss for `threshold`, ready for `model.compile`.

    The course returns an inner function that closes over `threshold`. A closure cannot be
    saved: Keras stores only its name, and a reloaded model either fails to deserialise it
    or silently gets a default threshold. This returns a registered `HuberLoss` instead,
    whose config carries the threshold, named after it so logs still say which one ran.
    It is called like the closure, `loss(y_true, y_pred)`, but returns the reduced value.
    """
    value = positive_float("threshold", threshold)
    return HuberLoss(threshold=value, name=f"huber_with_threshold_{value:g}")


@keras.saving.register_keras_serializable(package=PACKAGE)
def contrastive_loss(y_true: Any, y_pred: Any, margin: float = DEFAULT_CONTRASTIVE_MARGIN) -> Any:
    """Contrastive loss of a distance: pull same-class pairs together, push others apart.

    Label convention: `y_true` is 1 for a pair of the same class and 0 for different
    classes; `y_pred` is the distance `d` between the two embeddings. Per element,
    `y * d**2 + (1 - y) * max(margin - d, 0)**2` (the course writes it as
    `y*square(d) + (1-y)*square(max(margin-d, 0))`), then the mean over the last axis.
    Different-class pairs further apart than `margin` cost nothing.

    Returns:
        One loss value per pair; Keras reduces them (and applies `sample_weight`).
    """
    y_true, y_pred = to_same_rank(y_true, y_pred)
    same = y_true * ops.square(y_pred)
    different = (1 - y_true) * ops.square(ops.maximum(margin - y_pred, 0))
    return ops.mean(same + different, axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ContrastiveLoss(keras.losses.Loss):
    """Contrastive loss for siamese networks; see `contrastive_loss` for the formula.

    Label convention: 1 = same class, 0 = different class; predictions are distances.

    Args:
        margin: distance beyond which a different-class pair no longer adds to the loss.
        name: optional name for the loss instance.
        reduction: how Keras reduces the per-pair values (default `"sum_over_batch_size"`).
        dtype: dtype of the computation; `None` means `keras.backend.floatx()`.
    """

    def __init__(
        self,
        margin: float = DEFAULT_CONTRASTIVE_MARGIN,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        self.margin = positive_float("margin", margin)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._dtype_name = _dtype_name(dtype)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return contrastive_loss(y_true, y_pred, margin=self.margin)

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "margin": self.margin}
        config.setdefault("dtype", self._dtype_name)
        return config
