"""The Siamese Fashion-MNIST pipeline.

download x4 -> IDX to Parquet -> index pairs (+ training profile) -> train -> evaluate
(+ champion) -> drift against the champion -> register.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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
from lib.siamese.constants import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from lib.siamese.recipes import SiameseRecipe
from lib.siamese.spec import SPEC
from tasks.descriptors import Candidate, PairsRef, RunSummary, TableRef, TrainedModel
from tasks.download import download, fetched_by
from tasks.drift import drift_against_champion
from tasks.registry import check_registry
from tasks.result_storage import prepare_store
from tasks.siamese import (
    drift,
    evaluate,
    evaluate_champion,
    idx_to_parquet,
    make_pairs,
    profile,
    train,
)


class SiameseParameters(BaseModel):
    """Parameters of one siamese run (also the flow's parameter schema in the Prefect UI)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(default=0, ge=0, description="seeds the holdout, pairs and weights")
    preset: Literal["default", "course"] = Field(
        default="default", description="'course' reproduces the course recipe exactly"
    )
    epochs: int | None = Field(default=None, gt=0, description="override the preset's epochs")


@flow(name="siamese", flow_run_name="siamese-{params.preset}-seed{params.seed}", log_prints=True)
def siamese_pipeline(params: SiameseParameters | None = None) -> RunSummary:
    """Train, evaluate and register the siamese model; returns a short summary.

    An expected failure (bad data, a download that failed) ends the run Failed with its
    message and no traceback (`flows.failures`).
    """
    cap_arenas()  # before any training step starts TensorFlow's thread pools
    quiet_tensorflow_import()  # a deployment's run does not start in `trainflow`
    remove_stale_leftovers(load_settings().home)
    return run_cleanly(_steps, params or SiameseParameters())


def _steps(params: SiameseParameters) -> RunSummary:
    """The pipeline itself; `siamese_pipeline` runs it under `run_cleanly`."""
    prepare_store()  # before the first persisted task resolves `RECORDS`
    data = source_tables()
    pairs = make_pairs(data.train, data.test, params.seed)
    check_registry(SPEC)  # before training, which a registry that is down would waste
    recipe = SPEC.recipe(params.preset, params.epochs)
    training_started = time.time()  # the MLflow run spans train, evaluate and register
    trained = train(data.train, pairs, recipe, params.preset, params.seed)
    candidate = candidate_of(params, recipe, trained, data, pairs, training_started)
    return judge(candidate, data, pairs)


@dataclass(frozen=True)
class FashionData:
    """The downloaded IDX files by name, and the training and test image tables."""

    files: dict[str, FileRef]
    train: TableRef
    test: TableRef


def source_tables() -> FashionData:
    """Download the four IDX files and store the training and test images as tables."""
    raw = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
    files = {remote.name: download(remote) for remote in raw}
    train_table = idx_to_parquet(files[TRAIN_IMAGES.name], files[TRAIN_LABELS.name], "train")
    test_table = idx_to_parquet(files[TEST_IMAGES.name], files[TEST_LABELS.name], "test")
    return FashionData(files, train_table, test_table)


def candidate_of(
    params: SiameseParameters,
    recipe: SiameseRecipe,
    trained: TrainedModel,
    data: FashionData,
    pairs: PairsRef,
    started_at: float,
    **extra: object,
) -> Candidate:
    """`trained`, evaluated on the test pairs, with what registering it logs.

    `extra` adds to the parameters the report shows (a sweep says how it chose the model).
    """
    return Candidate(
        trained=trained,
        evaluation=evaluate(trained, data.train, data.test, pairs),
        parameters={**params.model_dump(), **extra},
        recipe=recipe.model_dump(),
        tags={
            "data.train_sha256": data.train.table.sha256,
            "data.test_sha256": data.test.table.sha256,
            "data.test_pairs_sha256": pairs.test.sha256,
        },
        started_at=started_at,
        test_data=(data.test.table, pairs.test),
        reference=profile(data.train, pairs),
        data={
            "train images": f"{data.train.rows} (sha256 {data.train.table.sha256[:12]})",
            "test images": f"{data.test.rows} (sha256 {data.test.table.sha256[:12]})",
            "test pairs": pairs.test.sha256[:12],
            **{name: fetched_by(ref) for name, ref in data.files.items()},
        },
    )


def judge(candidate: Candidate, data: FashionData, pairs: PairsRef) -> RunSummary:
    """Drift against the champion, the champion on the same test pairs, the gate, the report."""
    champion = rival(SPEC, candidate)
    # Drift is reported, never a reason to stop: retraining on data that moved is the point.
    drifted = drift_against_champion(SPEC, champion, partial(drift, data.train))
    if champion is not None and champion.metrics is None:
        champion = evaluate_champion(champion, data.test, pairs)
    return register_and_report(SPEC, candidate, champion, drifted)
