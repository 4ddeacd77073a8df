"""The part of every train task that is the same: progress reporting around a lib fit.

Keras itself prints nothing (the lib steps fit with ``verbose=0``): its line per epoch is
what `tasks.progress` replaces with a bar, a few log lines and the progress artifact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect.logging import get_run_logger

from tasks.descriptors import TrainedModel
from tasks.progress import EpochProgress
from tasks.storage import stored


def fit_with_progress(
    pipeline: str, description: str, train: Callable[[EpochProgress], Any]
) -> TrainedModel:
    """Run `train(progress)` (a lib train step), reporting its progress; describe its files.

    Args:
        pipeline: names the artifact, `train-<pipeline>-progress`, and the bar.
        description: what the artifact says is training.
        train: calls the lib step with the progress hook; returns its `TrainedFiles`.
    """
    with EpochProgress(pipeline, description) as progress:
        trained = train(progress)
        progress.finish()
    logger = get_run_logger()
    if trained.reused:  # another run trained it while this one waited for the folder's lock
        logger.info("reused the model another run trained in %s", trained.model.parent)
    elif trained.resumed_from is not None:
        logger.info("resumed training from epoch %d (its checkpoint)", trained.resumed_from)
    logger.info("trained %d epochs in %.1f s", trained.epochs_run, trained.seconds)
    return TrainedModel(
        model=stored(trained.model),
        history=stored(trained.history),
        epochs_run=trained.epochs_run,
        seconds=trained.seconds,
    )
