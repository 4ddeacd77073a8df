"""The shared train-task wrapper: progress reported around a lib fit, files described."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prefect import flow

from lib.core.hashing import sha256_file
from lib.core.training import TrainedFiles
from tasks.descriptors import TrainedModel
from tasks.fitting import fit_with_progress
from tasks.progress import EpochProgress
from tests.fixtures.prefect_runs import flow_run_artifacts

pytestmark = pytest.mark.usefixtures("prefect_api")

TOTAL, STOPPED_AT = 20, 13  # early stopping ends the fit after epoch 13 of 20


def _losses(epoch: int) -> dict[str, float]:
    return {"loss": 1.0 / epoch, "val_loss": 2.0 / epoch, "y1_output_loss": 0.5, "rmse": 3.0}


def test_a_fit_is_described_by_its_files_and_reports_a_few_epochs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model, history = tmp_path / "model.keras", tmp_path / "history.json"
    model.write_bytes(b"weights")
    history.write_text('{"loss": [2.0, 1.0]}')

    def train(progress: EpochProgress) -> TrainedFiles:
        for epoch in range(1, STOPPED_AT + 1):
            progress(epoch, TOTAL, _losses(epoch))
        return TrainedFiles(model, history, epochs_run=STOPPED_AT, seconds=1.5)

    @flow
    def fit() -> TrainedModel:
        return fit_with_progress("energy", "energy (default, seed 0)", train)

    with caplog.at_level(logging.INFO, logger="prefect.flow_runs"):
        state = fit(return_state=True)
    trained = state.result()

    assert trained.model.sha256 == sha256_file(model) and trained.epochs_run == STOPPED_AT
    assert trained.history.path == str(history) and trained.seconds == 1.5
    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert epochs == [
        "epoch 1/20: loss 1, val_loss 2",
        *(f"epoch {e}/20: loss {1 / e:.4g}, val_loss {2 / e:.4g}" for e in (2, 4, 6, 8, 10, 12)),
        "epoch 13/20 (stopped early): loss 0.07692, val_loss 0.1538",
    ]
    progress = flow_run_artifacts(state.state_details.flow_run_id)["train-energy-progress"]
    assert progress.type == "progress" and float(progress.data) == 100.0
    assert progress.description == (
        "energy (default, seed 0): 13 epochs (stopped early, of 20), loss 0.07692, val_loss 0.1538"
    )


def test_a_resumed_fit_says_where_it_resumed(caplog: pytest.LogCaptureFixture) -> None:
    @flow
    def resume() -> None:
        with EpochProgress("siamese", "siamese (course, seed 1)") as progress:
            for epoch in range(11, TOTAL + 1):
                progress(epoch, TOTAL, _losses(epoch))
            progress.finish()

    with caplog.at_level(logging.INFO, logger="prefect.flow_runs"):
        resume()

    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == [
        "epoch 11/20 (resumed)", "epoch 12/20", "epoch 14/20", "epoch 16/20", "epoch 18/20",
        "epoch 20/20",
    ]  # fmt: skip
