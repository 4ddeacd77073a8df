"""The energy-efficiency pipeline: download -> Parquet -> split -> train -> evaluate -> register."""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from flows.registration import register_and_report
from lib.datasets import ENERGY_WORKBOOK
from lib.energy_model import PRESETS
from lib.evaluation import GatePolicy
from lib.serving import EnergyPyfunc
from tasks.download import download, ingest_source
from tasks.energy import evaluate, evaluate_champion, excel_to_parquet, split, train

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
    return register_and_report(
        "energy",
        MODEL_NAME,
        trained,
        evaluation,
        evaluate_champion=lambda champion: evaluate_champion(champion, table, parts),
        gate=ENERGY_GATE,
        python_model=EnergyPyfunc(),
        parameters=params,
        recipe=recipe,
        tags={
            "data.source_sha256": raw.sha256,
            "data.table_sha256": table.table.sha256,
            "data.split_sha256": parts.split.sha256,
            "data.rows": str(table.rows),
        },
        data={
            "source": params.source or ENERGY_WORKBOOK.urls[0],
            "sha256": raw.sha256,
            "rows": str(table.rows),
            "split": str(parts.sizes),
        },
    )
