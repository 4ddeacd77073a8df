"""The `trainflow` command: summaries, predictions, and one-line errors with exit 1."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from flows.cli import main
from lib.core.registry import connect
from lib.core.settings import load_settings
from lib.energy.constants import MODEL_NAME, PREDICTED
from lib.energy.spec import SPEC
from tests.fixtures.energy import energy_rows, write_energy_workbook
from tests.fixtures.tampering import register_legacy_champion

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_run_then_predict_energy(
    trainflow_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workbook = write_energy_workbook(tmp_path / "mine.xlsx", n_rows=320)
    assert main(["run", "energy", "--source", str(workbook), "--epochs", "3"]) == 0
    printed = capsys.readouterr().out
    assert "energy: energy-efficiency v1 (new version, champion)" in printed
    assert "Y1_rmse" in printed and "/#/models/energy-efficiency/versions/1" in printed

    features = pd.DataFrame(
        energy_rows(5, seed=9), columns=[*map("X{}".format, range(1, 9)), "Y1", "Y2"]
    )
    inputs = tmp_path / "inputs.csv"
    features.drop(columns=["Y1", "Y2"]).to_csv(inputs, index=False)
    output = tmp_path / "predictions.parquet"
    assert main(["predict", "energy", str(inputs), "--output", str(output)]) == 0
    predicted = pd.read_parquet(output)
    assert list(predicted.columns[8:]) == [*PREDICTED, "in_domain", "domain_note"]
    assert len(predicted) == 5 and predicted["Y1_predicted"].between(0, 100).all()


def test_bad_source_is_one_line_and_exit_1(
    trainflow_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.xlsx"
    bad.write_bytes(b"\x00" * 10)
    assert main(["run", "energy", "--source", str(bad), "--epochs", "1"]) == 1
    error = capsys.readouterr().err
    assert "trainflow: error:" in error and "broken.xlsx" in error
    assert "Traceback" not in error


def test_predict_without_a_champion_says_so(
    trainflow_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs.csv"
    pd.DataFrame(energy_rows(2), columns=[*map("X{}".format, range(1, 9)), "Y1", "Y2"]).to_csv(
        inputs, index=False
    )
    assert main(["predict", "energy", str(inputs)]) == 1
    assert "no 'champion' version of model 'energy-efficiency'" in capsys.readouterr().err


def test_predict_refuses_a_champion_stored_as_a_pickle(
    trainflow_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings()
    client = connect(settings.tracking_uri, SPEC.pipeline, settings.home / "mlartifacts")
    marker = tmp_path / "unpickled"
    register_legacy_champion(client, MODEL_NAME, tmp_path, marker)
    inputs = tmp_path / "inputs.csv"
    pd.DataFrame(energy_rows(2), columns=[*map("X{}".format, range(1, 9)), "Y1", "Y2"]).to_csv(
        inputs, index=False
    )
    assert main(["predict", "energy", str(inputs)]) == 1
    error = capsys.readouterr().err
    [line] = [line for line in error.splitlines() if line.startswith("trainflow: error:")]
    assert "not a models-from-code version" in line and "retrain" in line
    assert "Traceback" not in error
    assert not marker.exists()


def test_missing_input_file_is_named(
    trainflow_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", "energy", str(tmp_path / "nowhere.csv")]) == 1
    assert "nowhere.csv" in capsys.readouterr().err


@pytest.mark.parametrize(("given", "expected"), [(None, "180"), ("30", "30")])
def test_ephemeral_api_gets_time_to_start_unless_told_otherwise(
    trainflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str | None,
    expected: str,
) -> None:  # fmt: skip
    variable = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
    monkeypatch.setenv(variable, "set so that monkeypatch restores what was there")
    if given is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, given)
    main(["predict", "energy", str(tmp_path / "nowhere.csv")])
    assert os.environ[variable] == expected


def test_predict_siamese_names_a_file_that_is_not_an_image(
    trainflow_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    assert main(["predict", "siamese", str(text), str(text)]) == 1
    error = capsys.readouterr().err
    assert "notes.png" in error and "Expected a PNG or JPEG" in error


def test_predict_siamese_without_a_champion_says_so(
    trainflow_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    picture = tmp_path / "shirt.png"
    Image.new("RGB", (60, 40), "white").save(picture)
    assert main(["predict", "siamese", str(picture), str(picture), "--invert"]) == 1
    assert "no 'champion' version of model 'fashion-siamese'" in capsys.readouterr().err
