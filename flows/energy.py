"""The energy-efficiency pipeline: download -> Parquet -> split -> train -> evaluate -> register."""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from lib.datasets import ENERGY_WORKBOOK
from lib.energy_model import PRESETS
from lib.evaluation import GatePolicy
from lib.serving import EnergyPyfunc
from tasks.download import download, ingest_source
from tasks.energy import evaluate, evaluate_champion, excel_to_parquet, split, train
from tasks.registry import current_champion, register_candidate
from tasks.report import publish_report

MODEL_NAME = "energy-efficiency"
# A champion must explain at least 90 % of the variance of both loads; the better of two is
# the one with the lower mean test RMSE over Y1 and Y2.
ENERGY_GATE = GatePolicy(
    score="mean_rmse", lower_is_better=True, floors={"Y1_r2": (">=", 0.9), "Y2_r2": (">=", 0.9)}
)


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
        description="path or URL of your own workbook of the same schema (no pinned checksum)",
    )


@flow(name="energy", flow_run_name="energy-{params.preset}-seed{params.seed}", log_prints=True)
def energy_pipeline(params: EnergyParameters | None = None) -> dict[str, Any]:
    """Train, evaluate and register the energy model; returns a short summary."""
    params = params or EnergyParameters()
    raw = ingest_source(params.source) if params.source else download(ENERGY_WORKBOOK)
    table = excel_to_parquet(raw)
    parts = split(table, params.seed)
    recipe = PRESETS[params.preset]
    if params.epochs is not None:
        recipe = recipe.model_copy(update={"epochs": params.epochs})
    trained = train(table, parts, recipe, params.preset, params.seed)
    evaluation = evaluate(trained, table, parts)
    champion = current_champion(MODEL_NAME)
    if champion is not None and champion.candidate_id != trained.model.sha256:
        champion = evaluate_champion(champion, table, parts)
    registration = register_candidate(
        name=MODEL_NAME,
        candidate_id=trained.model.sha256,
        keras_model=trained.model,
        python_model=EnergyPyfunc(),
        params={"preset": params.preset, "seed": params.seed, **recipe.model_dump()},
        metrics=evaluation.metrics,
        history_path=trained.history,
        tags={
            "data.source_sha256": raw.sha256,
            "data.table_sha256": table.table.sha256,
            "data.split_sha256": parts.split.sha256,
            "data.rows": str(table.rows),
        },
        plots=evaluation.plots,
        champion_ref=champion,
        gate=ENERGY_GATE,
    )
    champion_metrics = champion.metrics if champion is not None else None
    publish_report(
        "energy",
        data={
            "source": params.source or ENERGY_WORKBOOK.urls[0],
            "sha256": raw.sha256,
            "rows": str(table.rows),
            "split": str(parts.sizes),
        },
        parameters=params.model_dump(),
        candidate=evaluation.metrics,
        champion=champion_metrics,
        registration=registration,
        plots=evaluation.plots,
    )
    return {
        "pipeline": "energy",
        "metrics": evaluation.metrics,
        "champion_metrics": champion_metrics,
        "model": MODEL_NAME,
        "version": registration.version,
        "promoted": registration.promoted,
        "newly_registered": registration.newly_registered,
        "reason": registration.reason,
        "epochs": trained.epochs_run,
        "train_seconds": trained.seconds,
    }
