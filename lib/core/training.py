"""Fit a compiled Keras model with the callbacks every trainflow pipeline wants.

Resume: `BackupAndRestore` keeps the state of the last finished epoch under `checkpoint_dir`,
so a retried or killed run continues from there instead of starting over.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from lib.core.atomic import atomic_path
from lib.core.hashing import sha256_file

EpochHook = Callable[[int, int, dict[str, float]], None]


@dataclass(frozen=True)
class FitResult:
    """What a fit leaves behind: per-epoch history, epochs run and wall time in seconds."""

    history: dict[str, list[float]]
    epochs_run: int
    seconds: float


class _EpochReporter(keras.callbacks.Callback):
    """Calls `hook(epoch, total_epochs, logs)` after each epoch (1-based), for progress UIs."""

    def __init__(self, hook: EpochHook, total_epochs: int) -> None:
        super().__init__()
        self._hook = hook
        self._total = total_epochs

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._hook(epoch + 1, self._total, {k: float(v) for k, v in (logs or {}).items()})


def fit(
    model: keras.Model,
    train: Any,
    validation: Any,
    *,
    epochs: int,
    checkpoint_dir: Path,
    batch_size: int | None = None,
    early_stopping_patience: int | None = None,
    reduce_lr_patience: int | None = None,
    on_epoch: EpochHook | None = None,
    verbose: int | str = "auto",
) -> FitResult:
    """Train `model`; `train`/`validation` are `(x, y)` tuples or `tf.data` datasets.

    Early stopping restores the best validation weights, so the model returned is the best
    seen, not the last.
    """
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.BackupAndRestore(str(checkpoint_dir), delete_checkpoint=True)
    ]
    if early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=early_stopping_patience, restore_best_weights=True
            )
        )
    if reduce_lr_patience:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=reduce_lr_patience, min_lr=1e-5
            )
        )
    if on_epoch is not None:
        callbacks.append(_EpochReporter(on_epoch, epochs))
    x, y = train if isinstance(train, tuple) else (train, None)
    started = time.perf_counter()
    history = model.fit(
        x,
        y,
        validation_data=validation,
        epochs=epochs,
        batch_size=batch_size if isinstance(train, tuple) else None,
        shuffle=isinstance(train, tuple),  # a tf.data pipeline shuffles (or not) itself
        callbacks=callbacks,
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    logs = {key: [float(v) for v in values] for key, values in history.history.items()}
    epochs_run = len(next(iter(logs.values()), []))
    return FitResult(history=logs, epochs_run=epochs_run, seconds=seconds)


def save_model(model: keras.Model, target: Path) -> str:
    """Save as `.keras` temp-then-rename and return the file's sha256."""
    with atomic_path(target) as temporary:
        model.save(temporary)
    return sha256_file(target)


def write_history(history: dict[str, list[float]], target: Path) -> None:
    """Write the per-epoch history as JSON, temp-then-rename."""
    with atomic_path(target) as temporary:
        temporary.write_text(json.dumps(history, indent=1))


@dataclass(frozen=True)
class TrainedFiles:
    """A trained model as files: the `.keras` model, its history JSON, and how the fit went."""

    model: Path
    history: Path
    epochs_run: int
    seconds: float


def save_trained(model: keras.Model, result: FitResult, folder: Path) -> TrainedFiles:
    """Save `model` and its history under `folder` as ``model.keras`` and ``history.json``."""
    model_path, history_path = folder / "model.keras", folder / "history.json"
    save_model(model, model_path)
    write_history(result.history, history_path)
    return TrainedFiles(model_path, history_path, result.epochs_run, result.seconds)


def checkpoint_dir(folder: Path) -> Path:
    """Where `fit` keeps the resumable state of the fit that will save into `folder`."""
    return folder.with_name(folder.name + ".backup")
