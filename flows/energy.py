"""The energy-efficiency pipeline: download -> Parquet -> split -> train -> evaluate -> drift
against the champion -> register."""

from __future__ import annotations

import time
from functools import partial
from typing import Literal

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from flows.failures import run_cleanly
from flows.registration import register_and_report, rival
from lib.core.hygiene import remove_stale_leftovers
from lib.core.malloc import cap_arenas
from lib.core.quiet import quiet_tensorflow_import
from lib.core.refs import FileRef
from lib.core.settings import load_settings
from lib.energy.constants import WORKBOOK
from lib.energy.recipes import EnergyRecipe
from lib.energy.spec import SPEC
from tasks.descriptors import Candidate, RunSummary, SplitRef, TableRef, TrainedModel
from tasks.download import admit_source, download, fetched_by, ingest_source
from tasks.drift import drift_against_champion
from tasks.energy import drift, evaluate, evaluate_champion, excel_to_parquet, split, train
from tasks.registry import check_registry
from tasks.report import counts
from tasks.result_storage import prepare_store


class EnergyParameters(BaseModel):
    """Parameters of one energy run (also the flow's parameter schema in the Prefect UI)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(default=0, ge=0, description="seeds the split and the weights")
    preset: Literal["default", "course"] = Field(
        default="default", description="'course' reproduces the course recipe exactly"
    )
    epochs: int | None = Field(
        default=None, gt=0, description="override the preset's epoch count (quick trials)"
    )
    source: str | None = Field(
        default=None,
        description=(
            "path or URL of your own workbook of the same schema (no pinned checksum); a run "
            "started here reads local files only under the worker's TRAINFLOW_SOURCE_ROOTS"
        ),
    )


@flow(name="energy", flow_run_name="energy-{params.preset}-seed{params.seed}", log_prints=True)
def energy_pipeline(params: EnergyParameters | None = None) -> RunSummary:
    """Train, evaluate and register the energy model; returns a short summary.

    An expected failure (bad data, a download that failed) ends the run Failed with its
    message and no traceback (`flows.failures`).
    """
    cap_arenas()  # before any training step starts TensorFlow's thread pools
    quiet_tensorflow_import()  # a deployment's run does not start in `trainflow`
    remove_stale_leftovers(load_settings().home)
    return run_cleanly(_steps, params or EnergyParameters())


def _steps(params: EnergyParameters) -> RunSummary:
    """The pipeline itself; `energy_pipeline` runs it under `run_cleanly`."""
    prepare_store()  # before the first persisted task resolves `RECORDS`
    raw, table = source_table(params)
    parts = split(table, params.seed)
    check_registry(SPEC)  # before training, which a registry that is down would waste
    recipe = SPEC.recipe(params.preset, params.epochs)
    training_started = time.time()  # the MLflow run spans train, evaluate and register
    trained = train(table, parts, recipe, params.preset, params.seed)
    candidate = candidate_of(params, recipe, trained, (raw, table, parts), training_started)
    return judge(candidate, table, parts)


def source_table(params: EnergyParameters) -> tuple[FileRef, TableRef]:
    """The raw workbook (`--source`, else the pinned download) and its validated table."""
    if params.source:
        admit_source(params.source)
        raw = ingest_source(params.source)
    else:
        raw = download(WORKBOOK)
    return raw, excel_to_parquet(raw)


def candidate_of(
    params: EnergyParameters,
    recipe: EnergyRecipe,
    trained: TrainedModel,
    data: tuple[FileRef, TableRef, SplitRef],
    started_at: float,
    **extra: object,
) -> Candidate:
    """`trained`, evaluated on the test rows, with what registering it logs.

    `extra` adds to the parameters the report shows (a sweep says how it chose the model).
    """
    raw, table, parts = data
    return Candidate(
        trained=trained,
        evaluation=evaluate(trained, table, parts),
        parameters={**params.model_dump(), **extra},
        recipe=recipe.model_dump(),
        tags={
            "data.source_sha256": raw.sha256,
            "data.table_sha256": table.table.sha256,
            "data.split_sha256": parts.split.sha256,
            "data.rows": str(table.rows),
        },
        started_at=started_at,
        test_data=(table.table, parts.split),
        reference=parts.reference,
        data={
            "source": f"your file {params.source}" if params.source else fetched_by(raw),
            "sha256": raw.sha256,
            "rows": str(table.rows),
            "split": counts(parts.sizes),
        },
    )


def judge(candidate: Candidate, table: TableRef, parts: SplitRef) -> RunSummary:
    """Drift against the champion, the champion on the same test rows, the gate, the report."""
    champion = rival(SPEC, candidate)
    # Drift is reported, never a reason to stop: retraining on data that moved is the point.
    drifted = drift_against_champion(SPEC, champion, partial(drift, table))
    if champion is not None and champion.metrics is None:
        champion = evaluate_champion(champion, table, parts)
    return register_and_report(SPEC, candidate, champion, drifted)
