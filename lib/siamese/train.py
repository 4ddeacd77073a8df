"""Train the siamese model: the step the flow, the benchmarks and the tests all call."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from lib.core.seeding import seeded
from lib.core.training import EpochHook, FitResult, TrainedFiles, fit, train_into
from lib.siamese.constants import EVALUATION_BATCH
from lib.siamese.data import pair_dataset
from lib.siamese.idx import read_image_table
from lib.siamese.model import trainable_model, training_dataset
from lib.siamese.pairs import Pairs, read_pairs
from lib.siamese.recipes import SiameseRecipe


def fit_siamese(
    recipe: SiameseRecipe,
    images: np.ndarray,
    labels: np.ndarray,
    kept: np.ndarray,
    validation: Pairs,
    *,
    seed: int,
    backup: Path,
    on_epoch: EpochHook | None = None,
    verbose: int | str = 0,
) -> tuple[keras.Model, FitResult]:
    """Fit on pairs of the `kept` training images; validation pairs are scored every epoch.

    Images are gathered by index batch by batch (`lib.siamese.data`), never copied.
    """
    with seeded(seed):  # Keras' default seeds: this thread's, not the process's (see there)
        model, trained = trainable_model(recipe, len(kept))
        result = fit(
            trained,
            training_dataset(recipe, images, labels, kept, seed),
            pair_dataset(images, validation, EVALUATION_BATCH),
            epochs=recipe.epochs,
            checkpoint_dir=backup,
            early_stopping_patience=recipe.early_stopping_patience,
            reduce_lr_patience=recipe.reduce_lr_patience,
            on_epoch=on_epoch,
            verbose=verbose,
        )
    return model, result


def train_siamese(
    train_table: Path,
    train_indices: Path,
    validation_pairs: Path,
    recipe: SiameseRecipe,
    seed: int,
    folder: Path,
    *,
    on_epoch: EpochHook | None = None,
    verbose: int | str = 0,
) -> TrainedFiles:
    """Fit from stored files and save the model and history in `folder`.

    A killed or retried call with the same `folder` resumes from its last finished epoch; a
    call that finds `folder` complete (or waits while another process completes it) reads
    no images, trains nothing and returns its files (`lib.core.training.train_into`).
    """

    def fit_from_files(backup: Path) -> tuple[keras.Model, FitResult]:
        images, labels = read_image_table(train_table)
        return fit_siamese(
            recipe,
            images,
            labels,
            np.load(train_indices),
            read_pairs(validation_pairs),
            seed=seed,
            backup=backup,
            on_epoch=on_epoch,
            verbose=verbose,
        )

    return train_into(folder, fit_from_files)
