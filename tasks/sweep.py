"""A sweep's trials: each one the pipeline's own cached `train`, then a cached `validate`.

A trial task is what the sweep hands to Dask: it runs on a worker and calls the pipeline's
`train` task there (the same task, cache key and output folder as `trainflow run`, so a
trial that a run or an earlier sweep trained is a cache hit), then scores the model on
validation data. The trial itself is not cached: it is a few lines that say where it ran
and whether it trained, and a re-run must say that afresh.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from lib.core.refs import FileRef
from lib.core.sweep import ValidationScore
from lib.energy.recipes import EnergyRecipe
from lib.siamese.recipes import SiameseRecipe
from tasks.caching import ContentCache
from tasks.descriptors import (
    PairsRef,
    RunSummary,
    SplitRef,
    TableRef,
    TrainedModel,
    _Descriptor,
)
from tasks.energy import train as train_energy
from tasks.result_storage import RECORDS
from tasks.results import RESULT_SERIALIZER
from tasks.siamese import train as train_siamese
from tasks.storage import local_path

ENERGY_VALIDATION_STEP = "lib.energy.validation"
SIAMESE_VALIDATION_STEP = "lib.siamese.validation"
CACHED = "Cached"


class Validation(_Descriptor):
    """A model's metrics on validation data, and how long computing them took (seconds)."""

    metrics: dict[str, float]
    seconds: float


class TrialResult(_Descriptor):
    """What one trial did: its model, its validation metrics, where it ran, if it trained.

    Attributes:
        index: the trial's place in the grid (`lib.core.sweep.trial_grid`).
        worker: the Dask worker's name (``"flow process"`` outside Dask) and `pid` its
            process: a sweep on N workers shows N of them.
        trained: False when `train` was a cache hit (an earlier run or sweep trained it).
    """

    index: int
    label: str
    seed: int
    values: dict[str, object]
    model: TrainedModel
    validation: Validation
    worker: str
    pid: int
    trained: bool

    def score(self, score: ValidationScore) -> float:
        """The value the winner is picked by."""
        return self.validation.metrics[score.name]


class SweepSummary(_Descriptor):
    """What a sweep did: every trial, the winner on validation data, and its registration.

    Attributes:
        score: the validation metric the winner was picked by; `lower_is_better` its direction.
        winner: the winning trial's `index`.
        run: the winner evaluated on the test data and judged by the champion gate, as
            `trainflow run` reports it.
        cluster: where the trials ran, in words; `cluster_seconds` how long it took to
            start (or reach) it, `trials_seconds` the wall time of all trials on it.
    """

    pipeline: str
    score: str
    lower_is_better: bool
    trials: tuple[TrialResult, ...]
    winner: int
    run: RunSummary
    cluster: str
    cluster_seconds: float
    trials_seconds: float


def _worker_name() -> str:
    """This Dask worker's name, or ``"flow process"`` when the trial runs outside Dask."""
    from distributed import get_worker

    try:
        return f"dask worker {get_worker().name}"
    except ValueError:  # not inside a worker
        return "flow process"


def _validation_task_options(pipeline: str, entry: str) -> dict[str, Any]:
    """A validation step's task options: cached by content (`entry`'s code, the files)."""
    return {
        "task_run_name": f"validate-{pipeline}-{{trained.model.sha256:.8}}",
        "cache_policy": ContentCache(entry=entry),
        "persist_result": True,
        "result_serializer": RESULT_SERIALIZER,
        "result_storage": RECORDS,
    }


def _timed(metrics_of: Callable[..., dict[str, float]], *files: FileRef) -> Validation:
    """`metrics_of` the local copies of `files`, and how long it took."""
    started = time.perf_counter()
    metrics = metrics_of(*(local_path(file) for file in files))
    return Validation(metrics=metrics, seconds=time.perf_counter() - started)


@task(**_validation_task_options("energy", ENERGY_VALIDATION_STEP))
def validate_energy(trained: TrainedModel, table: TableRef, split_ref: SplitRef) -> Validation:
    """RMSE per output and their mean on the split's validation rows."""
    from lib.energy.validation import validation_metrics

    return _timed(validation_metrics, trained.model, table.table, split_ref.split)


@task(**_validation_task_options("siamese", SIAMESE_VALIDATION_STEP))
def validate_siamese(trained: TrainedModel, train_table: TableRef, pairs: PairsRef) -> Validation:
    """Pair accuracy on the validation pairs at the threshold calibrated on them."""
    from lib.siamese.validation import validation_metrics

    return _timed(validation_metrics, trained.model, train_table.table, pairs.validation)


@task(task_run_name="trial-energy-{index}", cache_policy=NO_CACHE, persist_result=False)
def energy_trial(
    index: int,
    label: str,
    values: dict[str, object],
    table: TableRef,
    split_ref: SplitRef,
    recipe: EnergyRecipe,
    preset: str,
    seed: int,
) -> TrialResult:
    """Train (cached, as `trainflow run` does) and validate one energy trial on this worker."""
    state = train_energy(table, split_ref, recipe, preset, seed, return_state=True)
    trained = state.result()
    validation = validate_energy(trained, table, split_ref)
    return _described(index, label, seed, values, trained, validation, state.name != CACHED)


@task(task_run_name="trial-siamese-{index}", cache_policy=NO_CACHE, persist_result=False)
def siamese_trial(
    index: int,
    label: str,
    values: dict[str, object],
    train_table: TableRef,
    pairs: PairsRef,
    recipe: SiameseRecipe,
    preset: str,
    seed: int,
) -> TrialResult:
    """Train (cached, as `trainflow run` does) and validate one siamese trial on this worker."""
    state = train_siamese(train_table, pairs, recipe, preset, seed, return_state=True)
    trained = state.result()
    validation = validate_siamese(trained, train_table, pairs)
    return _described(index, label, seed, values, trained, validation, state.name != CACHED)


def _described(
    index: int,
    label: str,
    seed: int,
    values: dict[str, object],
    trained: TrainedModel,
    validation: Validation,
    fresh: bool,
) -> TrialResult:
    worker = _worker_name()
    get_run_logger().info(
        "trial %d (%s) on %s: %s", index, label, worker, "trained" if fresh else "cached"
    )
    return TrialResult(
        index=index,
        label=label,
        seed=seed,
        values=values,
        model=trained,
        validation=validation,
        worker=worker,
        pid=os.getpid(),
        trained=fresh,
    )
