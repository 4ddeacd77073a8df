"""The part of every train task that is the same: fit with progress, save, describe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.logging import get_run_logger

from lib.refs import FileRef
from tasks.descriptors import TrainedModel
from tasks.progress import EpochProgress


def fit_and_save(
    model: Any,
    train: Any,
    validation: Any,
    recipe: Any,
    *,
    folder: Path,
    pipeline: str,
    description: str,
    batch_size: int | None = None,
) -> TrainedModel:
    """Fit `model` as `recipe` says, with a progress artifact, and save it under `folder`.

    Checkpoints go beside `folder`, keyed like it, so a killed or retried run with the same
    inputs resumes from its last finished epoch.
    """
    from lib.training import fit, save_model, write_history

    progress = EpochProgress(f"train-{pipeline}-progress", description)
    result = fit(
        model,
        train,
        validation,
        epochs=recipe.epochs,
        batch_size=batch_size,
        checkpoint_dir=folder.with_name(folder.name + ".backup"),
        early_stopping_patience=recipe.early_stopping_patience,
        reduce_lr_patience=recipe.reduce_lr_patience,
        on_epoch=progress,
        verbose=2,
    )
    progress.finish()
    model_path, history_path = folder / "model.keras", folder / "history.json"
    save_model(model, model_path)
    write_history(result.history, history_path)
    get_run_logger().info("trained %d epochs in %.1f s", result.epochs_run, result.seconds)
    return TrainedModel(
        model=FileRef.of(model_path),
        history=FileRef.of(history_path),
        epochs_run=result.epochs_run,
        seconds=result.seconds,
    )
