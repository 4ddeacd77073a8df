"""A tabular input encoder whose statistics travel inside the saved model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

# Two raw values closer than this are the same category (workbooks store 0.1 as 0.1000000001).
VALUE_TOLERANCE = 1e-4


@keras.saving.register_keras_serializable(package="trainflow")
class TabularEncoder(keras.layers.Layer):
    """Standardise every column and add one-hot indicators for low-cardinality columns.

    The model then takes raw units (e.g. orientation coded 2..5), so serving needs no side
    file of statistics: `adapt` stores the training split's mean and variance as
    non-trainable weights that are saved with the model. A value outside a column's
    vocabulary gets all-zero indicators and still reaches the network through its
    standardised copy.

    A cross `(a, b)` of two one-hot columns adds one indicator per pair of their values
    (their outer product): an interaction the network would otherwise have to learn, such
    as which side of a building its glazing faces (orientation x glazing distribution).

    Args:
        n_features: number of input columns.
        vocabularies: `(column, values)` pairs: column `column` gets one indicator per value.
        crosses: `(column_a, column_b)` pairs of columns that both have a vocabulary.
    """

    def __init__(
        self,
        n_features: int,
        vocabularies: Sequence[tuple[int, Sequence[float]]] = (),
        crosses: Sequence[tuple[int, int]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(n_features, int) or n_features < 1:
            raise ValueError(f"Expected a positive integer n_features. Received: {n_features=}")
        checked: list[tuple[int, list[float]]] = []
        for column, values in vocabularies:
            if not 0 <= int(column) < n_features or len(values) == 0:
                raise ValueError(
                    "Expected (column, values) with 0 <= column < n_features and some values. "
                    f"Received: column={column}, values={list(values)}"
                )
            checked.append((int(column), sorted(float(v) for v in values)))
        self.n_features = n_features
        self.vocabularies = checked
        known = [column for column, _ in checked]
        self.crosses = [(int(a), int(b)) for a, b in crosses]
        for a, b in self.crosses:
            if a == b or a not in known or b not in known:
                raise ValueError(
                    "Expected crosses of two different columns that have vocabularies "
                    f"({known}). Received: crosses={list(crosses)}"
                )

    def build(self, input_shape: Any) -> None:
        shape = (self.n_features,)
        self.mean = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="mean")
        self.variance = self.add_weight(
            shape=shape, initializer="ones", trainable=False, name="variance"
        )

    def adapt(self, data: np.ndarray) -> None:
        """Take mean and variance of every column from `data` (the training split)."""
        if not self.built:
            self.build((None, self.n_features))
        values = np.asarray(data, dtype="float64")
        self.mean.assign(values.mean(axis=0).astype("float32"))
        self.variance.assign(values.var(axis=0).astype("float32"))

    def call(self, inputs: Any) -> Any:
        scale = ops.sqrt(ops.maximum(self.variance, keras.backend.epsilon()))
        parts = [(inputs - self.mean) / scale]
        indicators = {}
        for column, values in self.vocabularies:
            vocabulary = ops.convert_to_tensor(values, dtype=inputs.dtype)
            distance = ops.abs(ops.expand_dims(inputs[:, column], -1) - vocabulary)
            indicators[column] = ops.cast(distance < VALUE_TOLERANCE, inputs.dtype)
            parts.append(indicators[column])
        for a, b in self.crosses:
            pairs = ops.expand_dims(indicators[a], -1) * ops.expand_dims(indicators[b], 1)
            parts.append(ops.reshape(pairs, (-1, pairs.shape[1] * pairs.shape[2])))
        return ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, int]:
        sizes = {column: len(values) for column, values in self.vocabularies}
        width = self.n_features + sum(sizes.values())
        width += sum(sizes[a] * sizes[b] for a, b in self.crosses)
        return (input_shape[0], width)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_features": self.n_features,
            "vocabularies": [[column, values] for column, values in self.vocabularies],
            "crosses": [[a, b] for a, b in self.crosses],
        }
