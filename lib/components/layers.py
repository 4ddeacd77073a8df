"""Layers from the course, written to Keras 3's layer contract so saved models reload.

Each layer validates its arguments in `__init__`, makes its weights in `build`, computes in
`call` with `keras.ops` only (so it runs on any backend) and lists every argument in
`get_config`, following `keras/src/layers/normalization/unit_normalization.py`.
"""

from __future__ import annotations

import numbers
from typing import Any

import keras
from keras import ops

from lib.components.losses import positive_float

PACKAGE = "trainflow"
PAIR = 2


def _positive_int(name: str, value: Any) -> int:
    """Return `value` as an int, or raise in Keras' voice; Keras 3 rejects float sizes."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Expected `{name}` to be an integer. Received: {name}={value!r}")
    if value < 1:
        raise ValueError(f"Expected `{name}` to be a positive integer. Received: {name}={value!r}")
    return int(value)


def _input_dim(layer: keras.layers.Layer, input_shape: Any) -> int:
    """The size of the last input axis, which the weights' shapes need to be known."""
    dim = input_shape[-1]
    if dim is None:
        raise ValueError(
            f"Expected the last axis of the input to {layer.name} to be defined. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    return int(dim)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SimpleDense(keras.layers.Layer):
    """A dense layer from scratch: `activation(x @ w + b)`.

    Args:
        units: number of outputs.
        activation: name or function, applied last; `None` means linear.
        kernel_initializer: initializer of `w`, shape (input_dim, units).
        bias_initializer: initializer of `b`, shape (units,).
    """

    def __init__(
        self,
        units: int,
        activation: Any = None,
        kernel_initializer: Any = "random_normal",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = _positive_int("units", units)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape: Any) -> None:
        input_dim = _input_dim(self, input_shape)
        self.w = self.add_weight(
            name="w", shape=(input_dim, self.units), initializer=self.kernel_initializer
        )
        self.b = self.add_weight(name="b", shape=(self.units,), initializer=self.bias_initializer)

    def call(self, inputs: Any) -> Any:
        return self.activation(ops.matmul(inputs, self.w) + self.b)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class Quadratic(keras.layers.Layer):
    """A dense layer with a quadratic term: `activation(x**2 @ a + x @ b + c)`.

    `x**2` is element-wise, so each output is a sum of one parabola per input feature;
    this fits `y = 2x**2 + 3x + 1` exactly with a single unit.

    Args:
        units: number of outputs.
        activation: name or function, applied last; `None` means linear.
        a_initializer: initializer of `a`, shape (input_dim, units).
        b_initializer: initializer of `b`, shape (input_dim, units).
        c_initializer: initializer of `c`, shape (units,).
    """

    def __init__(
        self,
        units: int,
        activation: Any = None,
        a_initializer: Any = "random_normal",
        b_initializer: Any = "random_normal",
        c_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = _positive_int("units", units)
        self.activation = keras.activations.get(activation)
        self.a_initializer = keras.initializers.get(a_initializer)
        self.b_initializer = keras.initializers.get(b_initializer)
        self.c_initializer = keras.initializers.get(c_initializer)

    def build(self, input_shape: Any) -> None:
        input_dim = _input_dim(self, input_shape)
        self.a = self.add_weight(
            name="a", shape=(input_dim, self.units), initializer=self.a_initializer
        )
        self.b = self.add_weight(
            name="b", shape=(input_dim, self.units), initializer=self.b_initializer
        )
        self.c = self.add_weight(name="c", shape=(self.units,), initializer=self.c_initializer)

    def call(self, inputs: Any) -> Any:
        quadratic = ops.matmul(ops.square(inputs), self.a)
        linear = ops.matmul(inputs, self.b)
        return self.activation(quadratic + linear + self.c)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "a_initializer": keras.initializers.serialize(self.a_initializer),
            "b_initializer": keras.initializers.serialize(self.b_initializer),
            "c_initializer": keras.initializers.serialize(self.c_initializer),
        }


def _is_shape(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(
        dim is None or isinstance(dim, numbers.Integral) for dim in value
    )


@keras.saving.register_keras_serializable(package=PACKAGE)
class EuclideanDistance(keras.layers.Layer):
    """The Euclidean distance between two batches of embeddings, one value per pair.

    Called on `[a, b]`, returns `sqrt(max(sum((a - b)**2, axis=-1, keepdims=True), epsilon))`
    with shape (batch, 1). This replaces the course's `Lambda(euclidean_distance)`, which
    cannot be loaded in safe mode.

    Args:
        epsilon: floor under the squared distance. The gradient of `sqrt` is infinite at 0,
            and identical embeddings are common early in siamese training, so the floor
            keeps gradients finite. Defaults to `keras.backend.epsilon()`.
    """

    def __init__(self, epsilon: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if epsilon is None:
            epsilon = keras.backend.epsilon()
        self.epsilon = positive_float("epsilon", epsilon)

    def build(self, input_shape: Any) -> None:
        is_pair = (
            isinstance(input_shape, list | tuple)
            and len(input_shape) == PAIR
            and all(_is_shape(shape) for shape in input_shape)
        )
        if not is_pair:
            raise ValueError(
                f"Expected {self.name} to be called on a list of two tensors [a, b]. "
                f"Received: input_shape={input_shape}"
            )
        left, right = (shape[-1] for shape in input_shape)
        if left is not None and right is not None and left != right:
            raise ValueError(
                "Expected both inputs to have the same last dimension. "
                f"Received: input_shape={input_shape}"
            )

    def call(self, inputs: Any) -> Any:
        left, right = inputs
        squared = ops.sum(ops.square(left - right), axis=-1, keepdims=True)
        return ops.sqrt(ops.maximum(squared, self.epsilon))

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (*input_shape[0][:-1], 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}
