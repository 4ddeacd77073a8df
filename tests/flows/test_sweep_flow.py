"""The sweep flow's siamese path, on ten synthetic classes: one trial on one Dask worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.sweep import SweepParameters, sweep_pipeline
from tests.flows.test_siamese_flow import synthetic_fashion  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.mark.slow
@pytest.mark.usefixtures("synthetic_fashion")
def test_a_siamese_sweep_registers_its_winner_on_validation_accuracy(
    trainflow_home: Path,
) -> None:
    params = SweepParameters(pipeline="siamese", seeds="1", values=("epochs=1",), workers=1)

    summary = sweep_pipeline(params)

    (trial,) = summary.trials
    assert summary.score == "accuracy" and not summary.lower_is_better
    assert trial.label == "seed 1, epochs=1" and trial.trained
    assert trial.worker == "dask worker 0"
    assert 0 <= trial.validation.metrics["accuracy"] <= 1
    assert "threshold" in trial.validation.metrics
    assert summary.run.version == "1" and summary.run.newly_registered
    assert (summary.run.pipeline, summary.run.model) == ("siamese", "fashion-siamese")
    assert str(trainflow_home) in trial.model.model.path
