"""The Siamese Fashion-MNIST pipeline.

download x4 -> IDX to Parquet -> index pairs -> train -> evaluate (+ champion) -> register.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from flows.registration import register_and_report
from lib.datasets import (
    FASHION_TEST_IMAGES,
    FASHION_TEST_LABELS,
    FASHION_TRAIN_IMAGES,
    FASHION_TRAIN_LABELS,
)
from lib.evaluation import GatePolicy
from lib.serving import THRESHOLD_KEY, SiamesePyfunc
from lib.siamese_model import PRESETS
from tasks.download import download
from tasks.siamese import evaluate, evaluate_champion, idx_to_parquet, make_pairs, train

MODEL_NAME = "fashion-siamese"
THRESHOLD_TAG = "trainflow.threshold"
# Better = higher test accuracy at the model's own registered threshold; a champion must
# also rank pairs well (AUC) and beat a coin by a wide margin.
SIAMESE_GATE = GatePolicy(
    score="accuracy",
    lower_is_better=False,
    floors={"accuracy": (">=", 0.8), "roc_auc": (">=", 0.85)},
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
def siamese_pipeline(params: SiameseParameters | None = None) -> dict[str, Any]:
    """Train, evaluate and register the siamese model; returns a short summary."""
    params = params or SiameseParameters()
    train_table = idx_to_parquet(
        download(FASHION_TRAIN_IMAGES), download(FASHION_TRAIN_LABELS), "train"
    )
    test_table = idx_to_parquet(
        download(FASHION_TEST_IMAGES), download(FASHION_TEST_LABELS), "test"
    )
    pairs = make_pairs(train_table, test_table, params.seed)
    recipe = PRESETS[params.preset]
    if params.epochs is not None:
        recipe = recipe.model_copy(update={"epochs": params.epochs})
    trained = train(train_table, pairs, recipe, params.preset, params.seed)
    evaluation = evaluate(trained, train_table, test_table, pairs)
    threshold = evaluation.metrics["threshold"]
    return register_and_report(
        "siamese",
        MODEL_NAME,
        trained,
        evaluation,
        evaluate_champion=lambda champion: evaluate_champion(champion, test_table, pairs),
        gate=SIAMESE_GATE,
        python_model=SiamesePyfunc(),
        parameters=params,
        recipe=recipe,
        tags={
            THRESHOLD_TAG: repr(threshold),
            "data.train_sha256": train_table.table.sha256,
            "data.test_sha256": test_table.table.sha256,
            "data.test_pairs_sha256": pairs.test.sha256,
        },
        data={
            "train images": f"{train_table.rows} (sha256 {train_table.table.sha256[:12]})",
            "test images": f"{test_table.rows} (sha256 {test_table.table.sha256[:12]})",
            "test pairs": pairs.test.sha256[:12],
        },
        model_config={THRESHOLD_KEY: threshold},
    )
