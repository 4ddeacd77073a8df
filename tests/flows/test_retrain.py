"""retrain-all: both pipelines as subflows, each failure isolated and named in the parent."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mlflow
import pytest
from prefect import flow

import flows.retrain as retrain
import flows.siamese as siamese_flow
from flows.energy import EnergyParameters
from flows.retrain import retrain_all
from flows.siamese import SiameseParameters
from lib.core.settings import load_settings
from lib.energy.constants import MODEL_NAME
from tests.fixtures.energy import write_energy_workbook

pytestmark = pytest.mark.usefixtures("prefect_api")

EPOCHS = 3  # a version to register is the point, not the fit


@pytest.fixture
def broken_fashion_mirror(
    trainflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first Fashion file comes from a mirror holding junk: it fails at once, no retries."""
    mirror = tmp_path / "mirror"
    pin = siamese_flow.TRAIN_IMAGES
    (mirror / pin.mirror_path).parent.mkdir(parents=True)
    (mirror / pin.mirror_path).write_bytes(b"junk")
    monkeypatch.setattr(siamese_flow, "TRAIN_IMAGES", dataclasses.replace(pin, urls=()))
    monkeypatch.setenv("TRAINFLOW_MIRROR", str(mirror))


@pytest.mark.usefixtures("broken_fashion_mirror")
def test_siamese_failure_fails_parent_but_energy_still_registers(tmp_path: Path) -> None:
    workbook = write_energy_workbook(tmp_path / "buildings.xlsx", n_rows=320)

    state = retrain_all(
        EnergyParameters(source=str(workbook), epochs=EPOCHS),
        SiameseParameters(epochs=1),
        return_state=True,
    )

    assert state.is_failed(), state.message
    assert state.message is not None
    assert state.message.startswith("siamese failed (energy completed).\nsiamese: ")
    assert "train-images-idx3-ubyte.gz" in state.message
    uri = load_settings().tracking_uri
    registry = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    energy_versions = registry.search_model_versions(f"name = '{MODEL_NAME}'")
    assert [str(v.version) for v in energy_versions] == ["1"]
    assert not (load_settings().home / "models" / "siamese").exists()


@flow(name="energy")
def _energy_ok(params: EnergyParameters | None = None) -> dict[str, str]:
    return {"pipeline": "energy"}


@flow(name="siamese")
def _siamese_ok(params: SiameseParameters | None = None) -> dict[str, str]:
    return {"pipeline": "siamese"}


@flow(name="energy")
def _energy_broken(params: EnergyParameters | None = None) -> None:
    raise ValueError("Expected a workbook. Received: source='nowhere.xlsx'")


@flow(name="siamese")
def _siamese_broken(params: SiameseParameters | None = None) -> None:
    raise RuntimeError("Could not fetch 'train-images-idx3-ubyte.gz'")


def test_both_completed_returns_both_summaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retrain, "energy_pipeline", _energy_ok)
    monkeypatch.setattr(retrain, "siamese_pipeline", _siamese_ok)

    state = retrain_all(return_state=True)

    assert state.is_completed()
    assert state.result() == {"energy": {"pipeline": "energy"}, "siamese": {"pipeline": "siamese"}}


def test_both_failed_names_both_with_their_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retrain, "energy_pipeline", _energy_broken)
    monkeypatch.setattr(retrain, "siamese_pipeline", _siamese_broken)

    state = retrain_all(return_state=True)

    assert state.is_failed() and state.message is not None
    assert state.message.startswith("energy and siamese failed.\nenergy: ")
    assert "nowhere.xlsx" in state.message and "train-images-idx3-ubyte.gz" in state.message
