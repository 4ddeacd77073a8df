"""Train the energy model: the step the flow, the benchmarks and the tests all call."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from lib.core.seeding import seeded
from lib.core.training import EpochHook, FitResult, TrainedFiles, fit, train_into
from lib.energy.model import build_energy_model, serving_model, training_targets
from lib.energy.recipes import EnergyRecipe
from lib.energy.splits import load_part


def fit_energy(
    recipe: EnergyRecipe,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    *,
    seed: int,
    backup: Path,
    on_epoch: EpochHook | None = None,
    verbose: int | str = 0,
) -> tuple[keras.Model, FitResult]:
    """Build the model from the training rows' statistics and fit it as `recipe` says.

    Args:
        train: raw features ``(n, 8)`` and loads ``(n, 2)`` of the training rows.
        validation: the same for the validation rows; none at all when the model is refit
            on every non-test row (nothing is then chosen during the fit).
        seed: seeds the weights and the batch order.
        backup: where the resumable state of the fit lives (see `lib.core.training.fit`).

    Returns:
        The model to save and serve (members averaged, `serving_model`) and the fit.
    """
    passes = recipe.passes_per_epoch  # one epoch: that many passes, shuffled as one
    with seeded(seed):  # Keras' default seeds: this thread's, not the process's (see there)
        model = build_energy_model(recipe, *train)
        validation_data = (
            (validation[0], training_targets(recipe, validation[1])) if len(validation[0]) else None
        )
        result = fit(
            model,
            (
                np.tile(train[0], (passes, 1)),
                training_targets(recipe, np.tile(train[1], (passes, 1))),
            ),
            validation_data,
            epochs=recipe.epochs,
            batch_size=recipe.batch_size,
            checkpoint_dir=backup,
            early_stopping_patience=recipe.early_stopping_patience,
            reduce_lr_patience=recipe.reduce_lr_patience,
            on_epoch=on_epoch,
            verbose=verbose,
        )
        return serving_model(recipe, model), result


def train_energy(
    table: Path,
    split: Path,
    recipe: EnergyRecipe,
    seed: int,
    folder: Path,
    *,
    on_epoch: EpochHook | None = None,
    verbose: int | str = 0,
) -> TrainedFiles:
    """Fit on the stored split's rows the recipe names; save model and history in `folder`.

    A killed or retried call with the same `folder` resumes from its last finished epoch; a
    call that finds `folder` complete (or waits while another process completes it) trains
    nothing and returns its files (`lib.core.training.train_into`).
    """
    fit_parts: tuple[str, ...] = ("train",)
    held_back: tuple[str, ...] = ("validation",)
    if recipe.fit_rows == "non-test":
        fit_parts, held_back = ("train", "validation"), ()
    return train_into(
        folder,
        lambda backup: fit_energy(
            recipe,
            load_part(table, split, *fit_parts),
            load_part(table, split, *held_back),
            seed=seed,
            backup=backup,
            on_epoch=on_epoch,
            verbose=verbose,
        ),
    )
