"""Huber and contrastive losses: values, configs, and survival of a save/load cycle."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest

from lib.components import (
    ContrastiveLoss,
    HuberLoss,
    contrastive_loss,
    huber_loss,
    huber_with_threshold,
)
from tests.fixtures.fresh_process import run_child

THRESHOLDS = [0.25, 1.0, 2.5]
N_SAMPLES, N_OUTPUTS = 16, 3
TOLERANCE = 1e-6

# One fresh interpreter loads every saved model: it has only `import lib.components`, no
# custom_objects, and reports predictions and the reloaded loss for the parent to compare.
CHILD = """
import json, sys
import numpy as np
import keras
import lib.components  # registers the trainflow objects; nothing else is passed to load_model

manifest = json.loads(open(sys.argv[1]).read())
report = {}
for key, entry in manifest.items():
    model = keras.saving.load_model(entry["model"], safe_mode=True)
    np.save(entry["prediction"], model.predict(np.load(entry["inputs"]), verbose=0))
    loss = model.loss
    y_true, y_pred = np.load(entry["y_true"]), np.load(entry["y_pred"])
    config = loss.get_config() if isinstance(loss, keras.losses.Loss) else None
    report[key] = {
        "loss": keras.saving.get_registered_name(type(loss) if config else loss),
        "config": config,
        "value": np.asarray(loss(y_true, y_pred)).tolist(),
    }
print(json.dumps(report))
"""


def _numbers(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=2.0, size=shape).astype("float32")


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_huber_loss_class_matches_keras_huber(threshold: float) -> None:
    y_true, y_pred = _numbers(0, (N_SAMPLES, N_OUTPUTS)), _numbers(1, (N_SAMPLES, N_OUTPUTS))
    expected = keras.losses.Huber(delta=threshold, reduction=None)(y_true, y_pred)
    ours = HuberLoss(threshold=threshold, reduction=None)(y_true, y_pred)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_huber_with_threshold_matches_keras_huber(threshold: float) -> None:
    y_true, y_pred = _numbers(2, (N_SAMPLES, N_OUTPUTS)), _numbers(3, (N_SAMPLES, N_OUTPUTS))
    expected = keras.losses.Huber(delta=threshold)(y_true, y_pred)
    loss = huber_with_threshold(threshold)
    np.testing.assert_allclose(loss(y_true, y_pred), expected, rtol=0, atol=TOLERANCE)
    assert loss.threshold == threshold
    assert loss.name == f"huber_with_threshold_{threshold:g}"


def test_huber_loss_function_matches_keras_huber_per_sample() -> None:
    y_true, y_pred = _numbers(4, (N_SAMPLES, N_OUTPUTS)), _numbers(5, (N_SAMPLES, N_OUTPUTS))
    values = huber_loss(y_true, y_pred)
    assert tuple(values.shape) == (N_SAMPLES,)
    np.testing.assert_allclose(values, keras.losses.huber(y_true, y_pred), atol=TOLERANCE)


def test_huber_hand_computed_small_and_large_error_branches() -> None:
    y_true = np.array([[0.0], [0.0]], dtype="float32")
    y_pred = np.array([[0.5], [3.0]], dtype="float32")
    # threshold 1: 0.5 * 0.5**2 = 0.125 (quadratic); 1 * 3 - 0.5 * 1**2 = 2.5 (linear)
    np.testing.assert_allclose(huber_loss(y_true, y_pred), [0.125, 2.5], atol=TOLERANCE)
    # threshold 2: 0.125 again; 2 * 3 - 0.5 * 2**2 = 4.0
    per_sample = HuberLoss(threshold=2.0, reduction=None)(y_true, y_pred)
    np.testing.assert_allclose(per_sample, [0.125, 4.0], atol=TOLERANCE)


def test_huber_sample_weight_is_applied_by_keras() -> None:
    y_true = np.zeros((2, 1), dtype="float32")
    y_pred = np.array([[0.5], [3.0]], dtype="float32")
    # sum_over_batch_size: (1 * 0.125 + 0 * 2.5) / 2 samples
    weighted = HuberLoss()(y_true, y_pred, sample_weight=np.array([1.0, 0.0]))
    assert float(weighted) == pytest.approx(0.0625, abs=TOLERANCE)


def test_losses_accept_rank_one_labels_against_column_predictions() -> None:
    # (batch,) - (batch, 1) would broadcast to (batch, batch) without rank alignment.
    y_true = np.array([0.0, 0.0], dtype="float32")
    y_pred = np.array([[0.5], [3.0]], dtype="float32")
    np.testing.assert_allclose(huber_loss(y_true, y_pred), [0.125, 2.5], atol=TOLERANCE)
    labels = np.array([1, 0])
    distances = np.array([[0.5], [0.3]], dtype="float32")
    np.testing.assert_allclose(contrastive_loss(labels, distances), [0.25, 0.49], atol=TOLERANCE)


def test_contrastive_hand_computed_with_label_one_meaning_same_class() -> None:
    labels = np.array([[1.0], [0.0], [0.0]], dtype="float32")
    distances = np.array([[0.5], [0.3], [1.5]], dtype="float32")
    # same class: 0.5**2; different, inside margin: (1 - 0.3)**2; different, beyond: 0
    expected = [0.25, 0.49, 0.0]
    np.testing.assert_allclose(contrastive_loss(labels, distances), expected, atol=TOLERANCE)
    per_pair = ContrastiveLoss(reduction=None)(labels, distances)
    np.testing.assert_allclose(per_pair, expected, atol=TOLERANCE)
    assert float(ContrastiveLoss()(labels, distances)) == pytest.approx(0.74 / 3, abs=TOLERANCE)


def test_contrastive_margin_moves_the_hinge() -> None:
    labels = np.array([[0.0], [1.0]], dtype="float32")
    distances = np.array([[0.5], [0.5]], dtype="float32")
    # different class at margin 2: (2 - 0.5)**2 = 2.25; same class ignores the margin: 0.25
    per_pair = ContrastiveLoss(margin=2.0, reduction=None)(labels, distances)
    np.testing.assert_allclose(per_pair, [2.25, 0.25], atol=TOLERANCE)
    np.testing.assert_allclose(
        contrastive_loss(labels, distances, margin=2.0), [2.25, 0.25], atol=TOLERANCE
    )


@pytest.mark.parametrize(
    ("loss", "field", "value"),
    [
        (HuberLoss(threshold=2.5, name="h", reduction="sum", dtype="float32"), "threshold", 2.5),
        (ContrastiveLoss(margin=0.5, name="c", reduction="mean"), "margin", 0.5),
    ],
)
def test_loss_config_round_trip(loss: keras.losses.Loss, field: str, value: float) -> None:
    config = loss.get_config()
    assert config[field] == value
    clone = type(loss).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == config


def test_everything_is_registered_under_trainflow() -> None:
    for obj in (HuberLoss, ContrastiveLoss, huber_loss, contrastive_loss):
        assert keras.saving.get_registered_name(obj) == f"trainflow>{obj.__name__}"


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: HuberLoss(threshold=-1), ValueError, r"Expected .* Received: threshold=-1"),
        (lambda: HuberLoss(threshold=0.0), ValueError, r"Received: threshold=0\.0"),
        (lambda: huber_with_threshold(float("nan")), ValueError, r"Received: threshold=nan"),
        (
            lambda: huber_with_threshold("1"),  # type: ignore[arg-type]
            TypeError,
            r"Expected .* Received: threshold='1'",
        ),
        (lambda: HuberLoss(threshold=True), TypeError, r"Received: threshold=True"),
        (lambda: ContrastiveLoss(margin=-0.5), ValueError, r"Expected .* Received: margin=-0\.5"),
        (lambda: HuberLoss(reduction="avg"), ValueError, r"Received: reduction=avg"),
    ],
)
def test_invalid_arguments_raise(make: Callable[[], Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make()


# --- save / load in a fresh process -------------------------------------------------------

LOSSES: dict[str, Callable[[], Any]] = {
    "huber_function": lambda: huber_loss,
    "huber_factory": lambda: huber_with_threshold(2.5),
    "huber_class": lambda: HuberLoss(threshold=0.75, reduction="sum"),
    "contrastive_function": lambda: contrastive_loss,
    "contrastive_class": lambda: ContrastiveLoss(margin=2.0),
}


def _compiled_model(loss: Any) -> keras.Model:
    inputs = keras.Input(shape=(N_OUTPUTS,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss=loss)
    return model


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Save one compiled model per loss; load them all in one child (a TF import costs seconds)."""
    root = tmp_path_factory.mktemp("losses")
    inputs, y_true, y_pred = root / "x.npy", root / "y_true.npy", root / "y_pred.npy"
    np.save(inputs, _numbers(6, (4, N_OUTPUTS)))
    np.save(y_true, np.array([[1.0], [0.0], [0.0], [1.0]], dtype="float32"))
    np.save(y_pred, np.array([[0.5], [0.3], [3.0], [2.0]], dtype="float32"))
    manifest, parent = {}, {}
    for key, make in LOSSES.items():
        model = _compiled_model(make())
        model.save(root / f"{key}.keras")
        manifest[key] = {
            "model": str(root / f"{key}.keras"),
            "inputs": str(inputs),
            "prediction": str(root / f"{key}.prediction.npy"),
            "y_true": str(y_true),
            "y_pred": str(y_pred),
        }
        parent[key] = {
            "prediction": model.predict(np.load(inputs), verbose=0),
            "value": np.asarray(model.loss(np.load(y_true), np.load(y_pred))),
        }
    (root / "manifest.json").write_text(json.dumps(manifest))
    child = run_child(CHILD, root / "manifest.json")
    return {
        key: {
            **child[key],
            "expected_prediction": parent[key]["prediction"],
            "expected_value": parent[key]["value"],
            "prediction": np.load(manifest[key]["prediction"]),
        }
        for key in LOSSES
    }


@pytest.mark.parametrize(
    ("key", "registered", "config"),
    [
        ("huber_function", "trainflow>huber_loss", None),
        (
            "huber_factory",
            "trainflow>HuberLoss",
            {"threshold": 2.5, "name": "huber_with_threshold_2.5"},
        ),
        ("huber_class", "trainflow>HuberLoss", {"threshold": 0.75, "reduction": "sum"}),
        ("contrastive_function", "trainflow>contrastive_loss", None),
        ("contrastive_class", "trainflow>ContrastiveLoss", {"margin": 2.0}),
    ],
)
def test_compiled_loss_survives_save_and_load_in_fresh_process(
    reloaded: dict[str, Any], key: str, registered: str, config: dict[str, Any] | None
) -> None:
    entry = reloaded[key]
    np.testing.assert_allclose(
        entry["prediction"], entry["expected_prediction"], rtol=0, atol=TOLERANCE
    )
    assert entry["loss"] == registered
    if config is None:
        assert entry["config"] is None
    else:
        assert config.items() <= entry["config"].items()
    np.testing.assert_allclose(entry["value"], entry["expected_value"], rtol=0, atol=TOLERANCE)
