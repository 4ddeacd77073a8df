"""The shared train-task wrapper: a progress artifact around a lib fit, files described."""

from __future__ import annotations

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


def test_a_fit_is_described_by_its_files_and_reports_its_epochs(tmp_path: Path) -> None:
    model, history = tmp_path / "model.keras", tmp_path / "history.json"
    model.write_bytes(b"weights")
    history.write_text('{"loss": [2.0, 1.0]}')

    def train(progress: EpochProgress) -> TrainedFiles:
        for epoch in (1, 2):
            progress(epoch, 2, {"loss": 3.0 - epoch, "val_loss": 3.5 - epoch})
        return TrainedFiles(model, history, epochs_run=2, seconds=1.5)

    @flow
    def fit() -> TrainedModel:
        return fit_with_progress("energy", "energy (default, seed 0)", train)

    state = fit(return_state=True)
    trained = state.result()

    assert trained.model.sha256 == sha256_file(model) and trained.epochs_run == 2
    assert trained.history.path == str(history) and trained.seconds == 1.5
    progress = flow_run_artifacts(state.state_details.flow_run_id)["train-energy-progress"]
    assert progress.type == "progress" and float(progress.data) == 100.0
