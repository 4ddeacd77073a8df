"""SiamesePyfunc through MLflow: log to a temp SQLite registry, load, predict, validate cells.

It is logged as the registry logs it: from its models-from-code file, no pickle.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from lib.siamese.model import build_siamese_model
from lib.siamese.recipes import SiameseRecipe
from lib.siamese.spec import SPEC

RECIPE = SiameseRecipe(
    dense_units=(8,), optimizer="adam", learning_rate=1e-3, epochs=1, batch_size=8, pairs="course"
)
MODEL_NAME = "fashion-siamese-test"
N_PAIRS = 6


def _pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(N_PAIRS, 28, 28)).astype("float32")


LEFT, RIGHT = _pixels(1), _pixels(2)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A tiny model registered with a threshold between its distances, and its truth."""
    folder = tmp_path_factory.mktemp("serving")
    keras.utils.set_random_seed(0)
    model = build_siamese_model(RECIPE)
    model.optimizer.build(model.trainable_variables)  # saved as training leaves it
    keras_path = folder / "siamese.keras"
    model.save(keras_path)
    distances = model.predict({"left": LEFT, "right": RIGHT}, verbose=0).ravel()
    threshold = float(np.median(distances))
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    try:
        experiment = mlflow.create_experiment("serving", artifact_location=folder.as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(SPEC.model_code()),
                artifacts={"keras_model": str(keras_path)},
                model_config={"threshold": threshold},
                pip_requirements=[],
            )
        version = mlflow.register_model(info.model_uri, MODEL_NAME)
        yield {
            "uri": f"models:/{MODEL_NAME}/{version.version}",
            "run_uri": info.model_uri,
            "keras_path": keras_path,
            "distances": distances,
            "threshold": threshold,
        }
    finally:
        mlflow.set_tracking_uri(None)


def _frame(left: np.ndarray = LEFT, right: np.ndarray = RIGHT) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "left": [row.astype(int).tolist() for row in left.reshape(len(left), -1)],
            "right": [row.astype(int).tolist() for row in right.reshape(len(right), -1)],
        },
        index=[f"pair-{k}" for k in range(len(left))],
    )


def test_registered_model_predicts_distance_and_verdict(logged: dict[str, Any]) -> None:
    loaded = mlflow.pyfunc.load_model(logged["uri"])
    result = loaded.predict(_frame())
    assert list(result.columns) == ["distance", "same", "in_domain", "domain_note"]
    assert result["in_domain"].dtype == bool  # uniform noise: its border is half-bright
    assert (result["domain_note"] == "").tolist() == result["in_domain"].tolist()
    assert list(result.index) == [f"pair-{k}" for k in range(N_PAIRS)]
    assert result["distance"].dtype == np.float64 and result["same"].dtype == bool
    np.testing.assert_allclose(result["distance"], logged["distances"], rtol=1e-5)
    expected_same = logged["distances"] < logged["threshold"]
    assert result["same"].tolist() == expected_same.tolist()
    assert 0 < expected_same.sum() < N_PAIRS  # the threshold really splits the pairs


def test_threshold_can_be_overridden_when_loading(logged: dict[str, Any]) -> None:
    loaded = mlflow.pyfunc.load_model(logged["uri"], model_config={"threshold": 1e9})
    assert loaded.predict(_frame())["same"].all()


def test_accepts_numpy_cells_and_ignores_extra_columns(logged: dict[str, Any]) -> None:
    loaded = mlflow.pyfunc.load_model(logged["uri"])
    frame = pd.DataFrame(
        {
            "id": range(N_PAIRS),
            "left": list(LEFT.reshape(N_PAIRS, -1)),
            "right": list(RIGHT.reshape(N_PAIRS, -1)),
        }
    )
    result = loaded.predict(frame)
    np.testing.assert_allclose(result["distance"], logged["distances"], rtol=1e-5)


def test_empty_frame_gives_empty_result(logged: dict[str, Any]) -> None:
    loaded = mlflow.pyfunc.load_model(logged["uri"])
    result = loaded.predict(_frame().iloc[:0])
    assert list(result.columns) == ["distance", "same", "in_domain", "domain_note"]
    assert len(result) == 0


def test_a_light_background_is_flagged_not_fashion_mnist_like(logged: dict[str, Any]) -> None:
    loaded = mlflow.pyfunc.load_model(logged["uri"])
    dark = LEFT // 4  # light-on-black, as Fashion-MNIST: border mean near 32
    result = loaded.predict(_frame(dark, 255 - dark))
    assert not result["in_domain"].any()
    assert loaded.predict(_frame(dark, dark))["in_domain"].all()
    assert result["domain_note"].str.startswith("right image has a light background").all()


def _with_cell(column: str, row: int, value: Any) -> pd.DataFrame:
    frame = _frame()
    frame[column] = frame[column].astype(object)
    frame.at[f"pair-{row}", column] = value
    return frame


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("right", [0] * 783, r"row 'pair-1', column 'right': .* 784 pixel values .*shape=\(783,\)"),
        (
            "left",
            [0] * 783 + [256],
            r"row 'pair-1', column 'left': .*0..255. Received: 256.0 at pi",
        ),
        ("left", [-1] + [0] * 783, r"row 'pair-1', column 'left'.*Received: -1.0 at pixel 0"),
        ("right", [0.0] * 783 + [float("nan")], r"column 'right'.*Received: nan at pixel 783"),
        ("right", ["a"] * 784, r"row 'pair-1', column 'right': Expected a sequence of 784 num"),
        ("left", np.zeros((28, 28)), r"column 'left'.*Received: shape=\(28, 28\)"),
    ],
)
def test_bad_cells_name_row_and_column(
    logged: dict[str, Any], column: str, value: Any, match: str
) -> None:
    loaded = mlflow.pyfunc.load_model(logged["uri"])
    with pytest.raises(ValueError, match=match):
        loaded.predict(_with_cell(column, 1, value))


def test_missing_column_is_named(logged: dict[str, Any]) -> None:
    loaded = mlflow.pyfunc.load_model(logged["uri"])
    with pytest.raises(ValueError, match=r"columns left, right.*\(missing right\)"):
        loaded.predict(_frame().drop(columns="right"))


@pytest.mark.parametrize(
    ("model_config", "match"),
    [
        (None, r"model_config to hold 'threshold' \(the calibrated distance threshold\)"),
        ({"threshold": "x"}, r"finite 'threshold' > 0 in model_config. Received: threshold='x'"),
        ({"threshold": -0.5}, r"Received: threshold=-0.5"),
    ],
)
def test_loading_without_a_good_threshold_fails_clearly(
    logged: dict[str, Any], tmp_path: Path, model_config: dict[str, Any] | None, match: str
) -> None:
    target = tmp_path / "bad-threshold"
    mlflow.pyfunc.save_model(
        path=str(target),
        python_model=str(SPEC.model_code()),
        artifacts={"keras_model": str(logged["keras_path"])},
        model_config=model_config,
        pip_requirements=[],
    )
    with pytest.raises(ValueError, match=match):
        mlflow.pyfunc.load_model(str(target))
