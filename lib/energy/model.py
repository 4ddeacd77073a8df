"""The energy-efficiency regressor: the course's Functional-API multi-output network.

Input 8 -> Dense128 -> Dense128 -> y1_output, with a Dense64 branch from the second layer to
y2_output. Presets change what sits around that body (input encoding, target scaling, loss,
optimiser with its weight decay, learning-rate schedule), whether the first layer is the
course's `Quadratic` instead of Dense128, and how many such networks train side by side and
are served as their average (`members`).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from lib.components import HuberLoss, Quadratic, TabularEncoder
from lib.core.errors import InputError
from lib.energy.constants import CATEGORY_CODES, FEATURES, OUTPUT_NAMES
from lib.energy.recipes import EnergyRecipe

# A numeric column is also one-hot encoded only while it has this few distinct training values.
MAX_ONE_HOT_VALUES = 16


def build_energy_model(
    recipe: EnergyRecipe, train_features: np.ndarray, train_targets: np.ndarray
) -> keras.Model:
    """Build and compile the model that trains; all statistics come from the training rows.

    With `recipe.members` > 1 it holds that many independent networks side by side, each
    with its own outputs and loss (`training_targets` feeds them); `serving_model` averages
    them into the two outputs everything else reads.

    Args:
        recipe: how to build and train.
        train_features: (n, 8) raw features of the training rows.
        train_targets: (n, 2) loads Y1, Y2 of the training rows (used with `scale_targets`).
    """
    inputs = keras.Input(shape=(train_features.shape[1],), name="features")
    outputs = [
        output
        for prefix in member_prefixes(recipe)
        for output in energy_outputs(recipe, inputs, train_features, train_targets, prefix)
    ]
    model = keras.Model(inputs=inputs, outputs=outputs, name="energy_efficiency")
    names = model.output_names
    model.compile(
        optimizer=optimizer_for(recipe, len(train_features)),
        loss={name: loss_for(recipe) for name in names},
        metrics={name: [keras.metrics.RootMeanSquaredError(name="rmse")] for name in names},
    )
    return model


def member_prefixes(recipe: EnergyRecipe) -> list[str]:
    """Layer-name prefix of each member network: none for a single network."""
    if recipe.members == 1:
        return [""]
    return [f"m{i}_" for i in range(recipe.members)]


def training_targets(recipe: EnergyRecipe, targets: np.ndarray) -> dict[str, np.ndarray]:
    """``(n, 2)`` loads as the training model's named outputs, one pair per member."""
    return {
        f"{prefix}{name}": targets[:, i]
        for prefix in member_prefixes(recipe)
        for i, name in enumerate(OUTPUT_NAMES)
    }


def serving_model(recipe: EnergyRecipe, model: keras.Model) -> keras.Model:
    """The model that is saved and served: outputs `y1_output`, `y2_output`.

    A single network is returned as it is; members are averaged (a built-in `Average`
    layer per output), so evaluation, the pyfunc and predict see one model either way.
    """
    if recipe.members == 1:
        return model
    by_name = dict(zip(model.output_names, model.outputs, strict=True))
    averaged = [
        keras.layers.Average(name=name)(
            [by_name[f"{prefix}{name}"] for prefix in member_prefixes(recipe)]
        )
        for name in OUTPUT_NAMES
    ]
    return keras.Model(inputs=model.inputs, outputs=averaged, name="energy_efficiency")


def energy_outputs(
    recipe: EnergyRecipe,
    inputs: Any,
    train_features: np.ndarray,
    train_targets: np.ndarray,
    prefix: str = "",
) -> list[Any]:
    """One network of the course's shape on `inputs`: its Y1 and Y2 outputs.

    Input -> encoder -> first (Dense128, or `Quadratic` 128) -> Dense128 -> Y1, with a
    Dense64 branch from the second layer to Y2. Every layer name starts with `prefix`.
    """
    if recipe.one_hot:
        encoder: keras.layers.Layer = TabularEncoder(
            train_features.shape[1],
            vocabularies=vocabularies(recipe.one_hot, train_features),
            crosses=[(FEATURES.index(a), FEATURES.index(b)) for a, b in recipe.one_hot_crosses],
            name=f"{prefix}encoder",
        )
    else:
        encoder = keras.layers.Normalization(name=f"{prefix}encoder")
    encoder.adapt(train_features)
    encoded = encoder(inputs)
    if recipe.first_layer == "quadratic":
        first = Quadratic(128, activation="relu", name=f"{prefix}first_quadratic")(encoded)
    else:
        first = keras.layers.Dense(128, activation="relu", name=f"{prefix}first_dense")(encoded)
    second = keras.layers.Dense(128, activation="relu", name=f"{prefix}second_dense")(first)
    third = keras.layers.Dense(64, activation="relu", name=f"{prefix}third_dense")(second)
    return [
        _output_head(recipe, f"{prefix}{OUTPUT_NAMES[0]}", second, train_targets[:, 0]),
        _output_head(recipe, f"{prefix}{OUTPUT_NAMES[1]}", third, train_targets[:, 1]),
    ]


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
    if not recipe.log_targets:
        restore = keras.layers.Normalization(invert=True, name=name)
        restore.adapt(targets.reshape(-1, 1))
        return restore(standardised)
    if np.min(targets) <= 0:
        raise InputError(
            "Expected loads above 0 kWh/m² with log_targets=True (the network learns their "
            f"logarithm). Received: a {name.removesuffix('_output')[-2:].upper()} of "
            f"{np.min(targets):g} among the training rows"
        )
    restore = keras.layers.Normalization(invert=True, name=f"{name}_log")
    restore.adapt(np.log(targets).reshape(-1, 1))
    return keras.layers.Activation("exponential", name=name)(restore(standardised))


def optimizer_for(recipe: EnergyRecipe, n_train: int) -> keras.optimizers.Optimizer:
    """The recipe's optimizer; a cosine schedule spans all epochs of `n_train` rows."""
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = recipe.learning_rate
    if recipe.learning_rate_schedule == "cosine":
        steps_per_epoch = -(-n_train * recipe.passes_per_epoch // recipe.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            recipe.learning_rate, decay_steps=recipe.epochs * steps_per_epoch
        )
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate)
    if recipe.weight_decay:
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=recipe.weight_decay)
    return keras.optimizers.Adam(learning_rate=learning_rate)


def loss_for(recipe: EnergyRecipe) -> keras.losses.Loss | str:
    """The loss of each output: the project's `HuberLoss`, or mean squared error."""
    if recipe.loss == "huber":
        return HuberLoss(threshold=recipe.huber_threshold)
    return "mse"
