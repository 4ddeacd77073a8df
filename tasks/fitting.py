"""The part of every train task that is the same: a progress artifact around a lib fit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect.logging import get_run_logger

from lib.core.refs import FileRef
from tasks.descriptors import TrainedModel
from tasks.progress import EpochProgress

KERAS_VERBOSITY = 2
"""One line per epoch from Keras itself, beside the progress artifact."""


def fit_with_progress(
    pipeline: str, description: str, train: Callable[[EpochProgress], Any]
) -> TrainedModel:
    """Run `train(progress)` (a lib train step), with a progress artifact; describe its files.

    Args:
        pipeline: names the artifact, `train-<pipeline>-progress`.
        description: what the artifact says is training.
        train: calls the lib step with the progress hook; returns its `TrainedFiles`.
    """
    progress = EpochProgress(f"train-{pipeline}-progress", description)
    trained = train(progress)
    progress.finish()
    logger = get_run_logger()
    if trained.reused:  # another run trained it while this one waited for the folder's lock
        logger.info("reused the model another run trained in %s", trained.model.parent)
    elif trained.resumed_from is not None:
        logger.info("resumed training from epoch %d (its checkpoint)", trained.resumed_from)
    logger.info("trained %d epochs in %.1f s", trained.epochs_run, trained.seconds)
    return TrainedModel(
        model=FileRef.of(trained.model),
        history=FileRef.of(trained.history),
        epochs_run=trained.epochs_run,
        seconds=trained.seconds,
    )
