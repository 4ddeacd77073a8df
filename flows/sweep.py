"""Sweeps: many trials of one pipeline on a Dask cluster, the best on validation registered.

The data steps run in the flow process, once (one split or pair set per seed); each trial
(a seed and recipe values) is a task on a Dask worker that runs the pipeline's own cached
`train` and a cached `validate` (`tasks.sweep`). The winner is the trial with the best
validation score, never a test score: only the winner is evaluated on the test rows (or
pairs), and it goes through the same champion gate, registration and report as
`trainflow run` (`flows.energy.judge`, `flows.siamese.judge`). A re-run trains only trials
it has not trained before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Literal

from prefect import Task, flow
from prefect.logging import get_run_logger
from pydantic import BaseModel, ConfigDict, Field

from flows import energy, siamese
from flows.cluster import sweep_cluster
from flows.failures import run_cleanly
from lib.core.errors import InputError
from lib.core.hygiene import remove_stale_leftovers
from lib.core.malloc import cap_arenas
from lib.core.model_spec import ModelSpec
from lib.core.quiet import quiet_tensorflow_import
from lib.core.settings import load_settings
from lib.core.sweep import Trial, ValidationScore, plan_trials
from lib.energy.spec import SPEC as ENERGY_SPEC
from lib.energy.validation import SCORE as ENERGY_SCORE
from lib.siamese.spec import SPEC as SIAMESE_SPEC
from lib.siamese.validation import SCORE as SIAMESE_SCORE
from tasks.descriptors import RunSummary
from tasks.energy import split
from tasks.registry import check_registry
from tasks.result_storage import prepare_store
from tasks.siamese import make_pairs
from tasks.sweep import SweepSummary, TrialResult, energy_trial, siamese_trial
from tasks.sweep_report import publish_sweep_report

SPECS: dict[str, ModelSpec] = {"energy": ENERGY_SPEC, "siamese": SIAMESE_SPEC}
DEFAULT_WORKERS = 2
TRIAL_FIT_ROWS = "train"
"""The rows every sweep trial fits on: the validation rows pick the winner."""


class SweepParameters(BaseModel):
    """Parameters of one sweep (also the flow's parameter schema in the Prefect UI)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pipeline: Literal["energy", "siamese"] = Field(default="energy", description="what to train")
    seeds: str = Field(
        default="0", description="seeds to try, as `--seeds`: a range 0-7, a list 0,2,5, or both"
    )
    values: tuple[str, ...] = Field(
        default=(),
        description="recipe values to try, as `--set`: each 'FIELD=V1,V2' (a recipe field); "
        "every combination is tried with every seed",
    )
    preset: Literal["default", "course"] = Field(
        default="default", description="the recipe the values are set on"
    )
    source: str | None = Field(
        default=None,
        description="energy only: your own workbook (as `trainflow run --source`); a run "
        "started here reads local files only under the worker's TRAINFLOW_SOURCE_ROOTS",
    )
    workers: int = Field(
        default=DEFAULT_WORKERS,
        ge=1,
        description="worker processes of the local Dask cluster (one thread each)",
    )
    dask_address: str | None = Field(
        default=None,
        description="an existing Dask scheduler, e.g. tcp://host:8786, instead of a local "
        "cluster; its workers need trainflow installed, and with an s3:// TRAINFLOW_STORE "
        "nothing else (with a folder store: the same TRAINFLOW_HOME disk)",
    )


def plan(params: SweepParameters) -> tuple[Trial, ...]:
    """The sweep's trials; a bad `--seeds`/`--set` or pipeline option is one `InputError`."""
    if params.pipeline != "energy" and params.source:
        raise InputError("--source is for energy sweeps (your own workbook); siamese takes none")
    trials = plan_trials(SPECS[params.pipeline].presets, params.preset, params.seeds, params.values)
    if any(trial.values.get("fit_rows", TRIAL_FIT_ROWS) != TRIAL_FIT_ROWS for trial in trials):
        # Such a fit trains on the validation rows the winner is picked by.
        raise InputError(
            "--set fit_rows: a sweep picks its winner on the validation rows, so its trials "
            "fit on the training rows only (fit_rows=train)"
        )
    return tuple(_on_training_rows(trial) for trial in trials)


def _on_training_rows(trial: Trial) -> Trial:
    """The trial with its fit on the training rows, where its preset fits on more.

    The energy default fits every non-test row when it is run on its own; in a sweep the
    validation rows choose the winner, so no trial may train on them.
    """
    if getattr(trial.recipe, "fit_rows", TRIAL_FIT_ROWS) == TRIAL_FIT_ROWS:
        return trial
    return replace(trial, recipe=trial.recipe.model_copy(update={"fit_rows": TRIAL_FIT_ROWS}))


@flow(name="sweep", flow_run_name="sweep-{params.pipeline}-seeds-{params.seeds}", log_prints=True)
def sweep_pipeline(params: SweepParameters | None = None) -> SweepSummary:
    """Train every trial on Dask, register the best on validation; returns every trial.

    An expected failure (a bad `--set`, bad data, a download that failed) ends the run Failed
    with its message and no traceback (`flows.failures`).
    """
    cap_arenas()  # the winner's evaluation may start TensorFlow in this process
    quiet_tensorflow_import()
    remove_stale_leftovers(load_settings().home)
    return run_cleanly(_steps, params or SweepParameters())


def _steps(params: SweepParameters) -> SweepSummary:
    prepare_store()  # before the first persisted task resolves `RECORDS`, here or on a worker
    trials = plan(params)
    if params.pipeline == "energy":
        return _energy_sweep(params, trials)
    return _siamese_sweep(params, trials)


def _energy_sweep(params: SweepParameters, trials: Sequence[Trial]) -> SweepSummary:
    run_params = energy.EnergyParameters(preset=params.preset, source=params.source)
    raw, table = energy.source_table(run_params)
    parts = {seed: split(table, seed) for seed in dict.fromkeys(t.seed for t in trials)}
    check_registry(ENERGY_SPEC)  # before training, which a registry that is down would waste
    started_at = time.time()

    def arguments(trial: Trial) -> dict[str, Any]:
        return {"table": table, "split_ref": parts[trial.seed]}

    results, cluster = _run_trials(params, trials, energy_trial, arguments)
    best = _winner(results, ENERGY_SCORE)
    trial = trials[best.index]
    candidate = energy.candidate_of(
        run_params.model_copy(update={"seed": trial.seed}),
        trial.recipe,  # type: ignore[arg-type]  # the energy preset's own schema
        best.model,
        (raw, table, parts[trial.seed]),
        started_at,
        sweep=_how_chosen(results, best, ENERGY_SCORE),
    )
    run = energy.judge(candidate, table, parts[trial.seed])
    return _summarised(params, results, best, ENERGY_SCORE, run, cluster)


def _siamese_sweep(params: SweepParameters, trials: Sequence[Trial]) -> SweepSummary:
    run_params = siamese.SiameseParameters(preset=params.preset)
    data = siamese.source_tables()
    seeds = dict.fromkeys(t.seed for t in trials)
    pairs = {seed: make_pairs(data.train, data.test, seed) for seed in seeds}
    check_registry(SIAMESE_SPEC)
    started_at = time.time()

    def arguments(trial: Trial) -> dict[str, Any]:
        return {"train_table": data.train, "pairs": pairs[trial.seed]}

    results, cluster = _run_trials(params, trials, siamese_trial, arguments)
    best = _winner(results, SIAMESE_SCORE)
    trial = trials[best.index]
    candidate = siamese.candidate_of(
        run_params.model_copy(update={"seed": trial.seed}),
        trial.recipe,  # type: ignore[arg-type]  # the siamese preset's own schema
        best.model,
        data,
        pairs[trial.seed],
        started_at,
        sweep=_how_chosen(results, best, SIAMESE_SCORE),
    )
    run = siamese.judge(candidate, data, pairs[trial.seed])
    return _summarised(params, results, best, SIAMESE_SCORE, run, cluster)


def _run_trials(
    params: SweepParameters,
    trials: Sequence[Trial],
    trial_task: Task[..., TrialResult],
    data: Callable[[Trial], dict[str, Any]],
) -> tuple[list[TrialResult], tuple[str, float, float]]:
    """Submit every trial to the cluster and wait for all; a failed trial fails the sweep.

    Returns the trials' results in grid order, and the cluster's description, start-up
    seconds and the seconds the trials took on it.
    """
    logger = get_run_logger()
    with sweep_cluster(params.workers, params.dask_address) as cluster:
        logger.info(
            "%d trials on %s (up in %.1f s)",
            len(trials),
            cluster.description,
            cluster.start_seconds,
        )
        started = time.perf_counter()
        futures = [
            cluster.runner.submit(
                trial_task,
                parameters={
                    "index": index,
                    "label": trial.label,
                    "values": dict(trial.values),
                    **data(trial),
                    "recipe": trial.recipe,
                    "preset": params.preset,
                    "seed": trial.seed,
                },
            )
            for index, trial in enumerate(trials)
        ]
        results = [future.result() for future in futures]
        seconds = time.perf_counter() - started
    return results, (cluster.description, cluster.start_seconds, seconds)


def _winner(results: Sequence[TrialResult], score: ValidationScore) -> TrialResult:
    return results[score.best([result.score(score) for result in results])]


def _how_chosen(results: Sequence[TrialResult], best: TrialResult, score: ValidationScore) -> str:
    """What the report's parameters say about the sweep that chose this model."""
    return (
        f"trial {best.index} of {len(results)} ({best.label}): best validation "
        f"{score.name} {best.score(score):.4f}"
    )


def _summarised(
    params: SweepParameters,
    results: Sequence[TrialResult],
    best: TrialResult,
    score: ValidationScore,
    run: RunSummary,
    cluster: tuple[str, float, float],
) -> SweepSummary:
    description, start_seconds, trials_seconds = cluster
    summary = SweepSummary(
        pipeline=params.pipeline,
        score=score.name,
        lower_is_better=score.lower_is_better,
        trials=tuple(results),
        winner=best.index,
        run=run,
        cluster=description,
        cluster_seconds=start_seconds,
        trials_seconds=trials_seconds,
    )
    publish_sweep_report(summary)
    return summary
