"""The end of `trainflow run`: the table fits 80 columns, the JSON is strict."""

from __future__ import annotations

import io
import json

from flows.summaries import Outcome, as_json, print_tables
from tasks.descriptors import RunSummary

METRICS = {"Y1_rmse": 1.25, "Y2_rmse": 1.5, "mean_rmse": 1.375}
LONG_REASON = (
    "candidate mean_rmse=1.375 does not beat champion mean_rmse=1.2 on the same test data, "
    "and this sentence goes on long enough to wrap"
)


def _summary(**changes: object) -> RunSummary:
    fields = {
        "pipeline": "energy",
        "model": "energy-efficiency",
        "version": "4",
        "version_url": "http://127.0.0.1:5000/#/models/energy-efficiency/versions/4",
        "promoted": False,
        "newly_registered": True,
        "reason": LONG_REASON,
        "metrics": METRICS,
        "champion_metrics": {"Y1_rmse": 1.0, "Y2_rmse": 1.4, "mean_rmse": 1.2},
        "champion_version": "2",
        "epochs": 300,
        "train_seconds": 61.04,
    }
    return RunSummary.model_validate({**fields, **changes})


def _printed(summary: RunSummary) -> list[str]:
    written = io.StringIO()
    print_tables([summary], written)
    return written.getvalue().splitlines()


def test_the_table_sets_the_metrics_beside_the_champions_in_80_columns() -> None:
    lines = _printed(_summary())

    assert lines[1] == "energy: energy-efficiency v4 (new version, not promoted)"
    assert lines[2].split() == ["test", "metric", "v4", "champion", "v2"]
    assert [line.split() for line in lines[4:7]] == [
        ["Y1_rmse", "1.2500", "1.0000"],
        ["Y2_rmse", "1.5000", "1.4000"],
        ["mean_rmse", "1.3750", "1.2000"],
    ]
    assert lines[8].startswith("decision  candidate mean_rmse=1.375")
    assert lines[9].startswith("          ")  # the reason wraps under itself
    assert lines[-2:] == [
        "trained   300 epochs in 61.0 s",
        "MLflow    http://127.0.0.1:5000/#/models/energy-efficiency/versions/4",
    ]
    assert max(map(len, lines)) <= 80


def test_no_champion_column_when_the_champion_is_this_very_version() -> None:
    lines = _printed(_summary(version="2", newly_registered=False))
    assert lines[2].split() == ["test", "metric", "v2"]


def test_the_json_is_strict_and_a_failed_pipeline_has_only_its_error() -> None:
    unscored = _summary(champion_metrics={"mean_rmse": float("nan")})
    text = as_json([Outcome("energy", summary=unscored), Outcome("siamese", error="no data")])

    energy, siamese = json.loads(text, parse_constant=lambda name: 1 / 0)  # NaN would raise
    assert energy["champion_metrics"] == {"mean_rmse": None}
    assert energy["metrics"] == METRICS and energy["error"] is None
    assert "pipeline" in energy and energy["version_url"].endswith("/versions/4")
    assert siamese == {"pipeline": "siamese", "error": "no data"}
