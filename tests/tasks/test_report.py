"""The run report: metrics side by side, the decision, inline plots, a link to the version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from prefect import flow

from lib.core.plots import save_figure
from lib.core.refs import FileRef
from lib.core.registry import Registration
from tasks.report import counts, metrics_rows, publish_report, shown

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_metrics_rows_put_candidate_and_champion_side_by_side() -> None:
    rows = metrics_rows({"rmse": 0.5, "r2": 0.91}, {"rmse": 0.6})
    assert rows == [
        {"metric": "rmse", "candidate": "0.5000", "champion": "0.6000"},
        {"metric": "r2", "candidate": "0.9100", "champion": "—"},
    ]


def test_metrics_rows_without_a_champion() -> None:
    assert metrics_rows({"rmse": 0.5}, None) == [
        {"metric": "rmse", "candidate": "0.5000", "champion": "—"}
    ]


def test_the_report_says_what_was_decided_and_shows_the_plots(tmp_path: Path) -> None:
    figure = Figure()
    figure.add_subplot(1, 1, 1).plot(np.arange(3))
    plot = FileRef.of(save_figure(figure, tmp_path / "curve.png"))
    registration = Registration(
        "energy-efficiency", "3", True, "candidate beats champion", "run", True
    )

    @flow
    def report() -> str:
        return publish_report(
            "energy",
            data={"rows": "768", "split": counts({"train": 537, "validation": 77, "test": 154})},
            parameters={"seed": 0, "epochs": None, "layers": [64, 32]},
            candidate={"mean_rmse": 0.4},
            champion={"mean_rmse": 0.5},
            registration=registration,
            plots=(plot,),
        )

    markdown = report()
    assert "# energy: energy-efficiency version 3" in markdown
    assert "**Decision:** promoted to champion. Candidate beats champion." in markdown
    assert "| mean_rmse | 0.4000 | 0.5000 |" in markdown
    assert "- split: `train 537 · validation 77 · test 154`" in markdown
    assert "- epochs: `not set`" in markdown and "- layers: `64, 32`" in markdown
    words = markdown.split("## Plots")[0]  # the base64 of a picture may spell anything
    assert "None" not in words and "{" not in words  # no Python reprs
    assert "](data:image/png;base64," in markdown
    assert "/#/models/energy-efficiency/versions/3)" in markdown


def test_values_read_as_words_not_python_reprs() -> None:
    assert shown(None) == "not set"
    assert shown({"train": 537, "test": 154}) == "train 537 · test 154"
    assert shown(("X6", "X8")) == "X6, X8"
    assert shown(0.5) == "0.5"


def test_the_drift_section_flags_drift_with_its_table_plot_and_rules(tmp_path: Path) -> None:
    import pandas as pd

    from lib.core.drift import compare_frames
    from lib.core.plots import psi_bars
    from tasks.descriptors import DriftRef
    from tasks.report import drift_section

    rng = np.random.default_rng(0)
    report = compare_frames(
        pd.DataFrame({"X5": rng.choice([3.5, 7.0], 200)}), pd.DataFrame({"X5": [7.0] * 200}), ["X5"]
    )
    drift = DriftRef(
        drifted=True,
        summary="against champion v2's training data: drift in X5 (200 rows; 200 reference rows)",
        report=FileRef.of(report.write(tmp_path / "drift.json")),
        plot=FileRef.of(psi_bars(report, tmp_path / "drift.png")),
    )

    heading, flag, table, plot, rules = drift_section(drift)
    assert heading == "## Drift against the champion's training data"
    assert flag.startswith("**DRIFT** against champion v2's training data: drift in X5")
    assert table.splitlines()[0].startswith("| column | reference mean | incoming mean | PSI |")
    assert "| X5 | 5.442 | 7 |" in table and "DRIFT: PSI" in table
    assert plot.startswith("![drift](data:image/png;base64,")
    assert "Drift does not stop training" in rules and "PSI is at least 0.2" in rules


def test_without_a_champion_the_drift_section_says_nothing_was_compared() -> None:
    from tasks.descriptors import DriftRef
    from tasks.report import drift_section

    unchecked = DriftRef(drifted=False, summary="not checked: energy-efficiency has no champion")
    heading, flag, rules = drift_section(unchecked)
    assert flag == "**Drift:** not checked: energy-efficiency has no champion."
