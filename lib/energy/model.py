"""The energy-efficiency regressor: the course's Functional-API multi-output network.

Input 8 -> Dense128 -> Dense128 -> y1_output, with a Dense64 branch from the second layer to
y2_output. Presets change only what sits around that body: input encoding, target scaling,
loss, optimiser (with its weight decay) and learning-rate schedule.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from lib.components import HuberLoss, TabularEncoder
from lib.energy.constants import CATEGORY_CODES, FEATURES, OUTPUT_NAMES
from lib.energy.recipes import EnergyRecipe

# A numeric column is also one-hot encoded only while it has this few distinct training values.
MAX_ONE_HOT_VALUES = 16


def build_energy_model(
    recipe: EnergyRecipe, train_features: np.ndarray, train_targets: np.ndarray
) -> keras.Model:
    """Build and compile the model; all statistics come from the training split only.

    Args:
        recipe: how to build and train.
        train_features: (n, 8) raw features of the training split.
        train_targets: (n, 2) loads Y1, Y2 of the training split (used with `scale_targets`).
    """
    n_features = train_features.shape[1]
    inputs = keras.Input(shape=(n_features,), name="features")
    if recipe.one_hot:
        encoder: keras.layers.Layer = TabularEncoder(
            n_features, vocabularies=vocabularies(recipe.one_hot, train_features), name="encoder"
        )
    else:
        encoder = keras.layers.Normalization(name="encoder")
    encoder.adapt(train_features)
    encoded = encoder(inputs)
    first_dense = keras.layers.Dense(128, activation="relu", name="first_dense")(encoded)
    second_dense = keras.layers.Dense(128, activation="relu", name="second_dense")(first_dense)
    third_dense = keras.layers.Dense(64, activation="relu", name="third_dense")(second_dense)
    outputs = [
        _output_head(recipe, OUTPUT_NAMES[0], second_dense, train_targets[:, 0]),
        _output_head(recipe, OUTPUT_NAMES[1], third_dense, train_targets[:, 1]),
    ]
    model = keras.Model(inputs=inputs, outputs=outputs, name="energy_efficiency")
    model.compile(
        optimizer=_optimizer(recipe, len(train_features)),
        loss={name: _loss(recipe) for name in OUTPUT_NAMES},
        metrics={name: [keras.metrics.RootMeanSquaredError(name="rmse")] for name in OUTPUT_NAMES},
    )
    return model


def vocabularies(
    names: tuple[str, ...], train_features: np.ndarray
) -> list[tuple[int, list[float]]]:
    """Category values per one-hot feature: schema codes, or the training split's values."""
    result = []
    for name in names:
        column = FEATURES.index(name)
        values = CATEGORY_CODES.get(name) or tuple(np.unique(train_features[:, column]).tolist())
        if len(values) <= MAX_ONE_HOT_VALUES:
            result.append((column, list(values)))
    return result


def _output_head(recipe: EnergyRecipe, name: str, hidden: Any, targets: np.ndarray) -> Any:
    """A Dense(1) output, followed by un-standardising when the recipe scales targets.

    Y1 and Y2 span 6-48 kWh/m²: learning them standardised keeps the two losses on one
    scale and lets a larger learning rate work.
    """
    if not recipe.scale_targets:
        return keras.layers.Dense(1, name=name)(hidden)
    standardised = keras.layers.Dense(1, name=f"{name}_standardised")(hidden)
    restore = keras.layers.Normalization(invert=True, name=name)
    restore.adapt(targets.reshape(-1, 1))
    return restore(standardised)


def _optimizer(recipe: EnergyRecipe, n_train: int) -> keras.optimizers.Optimizer:
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = recipe.learning_rate
    if recipe.learning_rate_schedule == "cosine":
        steps_per_epoch = -(-n_train // recipe.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            recipe.learning_rate, decay_steps=recipe.epochs * steps_per_epoch
        )
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate)
    if recipe.weight_decay:
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=recipe.weight_decay)
    return keras.optimizers.Adam(learning_rate=learning_rate)


def _loss(recipe: EnergyRecipe) -> keras.losses.Loss | str:
    if recipe.loss == "huber":
        return HuberLoss(threshold=recipe.huber_threshold)
    return "mse"
