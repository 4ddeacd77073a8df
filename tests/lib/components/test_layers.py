"""Custom layers: hand-computed outputs, configs, a tiny overfit, and a fresh-process reload."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest

from lib.components import EuclideanDistance, Quadratic, SimpleDense
from tests.fixtures.fresh_process import run_child

TOLERANCE = 1e-6
SEED = 7

# One fresh interpreter loads every saved model: it has only `import lib.components`, no
# custom_objects, and reports predictions and the reloaded layers for the parent to compare.
CHILD = """
import json, sys
import numpy as np
import keras
import lib.components  # registers the trainflow objects; nothing else is passed to load_model

manifest = json.loads(open(sys.argv[1]).read())
report = {}
for key, entry in manifest.items():
    model = keras.saving.load_model(entry["model"], safe_mode=True)
    inputs = [np.load(path) for path in entry["inputs"]]
    inputs = inputs[0] if len(inputs) == 1 else inputs
    np.save(entry["prediction"], model.predict(inputs, verbose=0))
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    report[key] = [
        {"registered": keras.saving.get_registered_name(type(layer)), "config": layer.get_config()}
        for layer in layers
    ]
print(json.dumps(report))
"""


# --- hand-computed values --------------------------------------------------------------


def test_simple_dense_hand_computed() -> None:
    layer = SimpleDense(2)
    layer.build((None, 2))
    layer.set_weights([np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -1.0])])
    inputs = np.array([[1.0, 1.0], [2.0, -1.0]], dtype="float32")
    # row 1: [1+3, 2+4] + b = [4.5, 5]; row 2: [2-3, 4-4] + b = [-0.5, -1]
    np.testing.assert_allclose(layer(inputs), [[4.5, 5.0], [-0.5, -1.0]], atol=TOLERANCE)


def test_simple_dense_applies_activation_last() -> None:
    layer = SimpleDense(2, activation="relu")
    layer.build((None, 2))
    layer.set_weights([np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -1.0])])
    inputs = np.array([[2.0, -1.0]], dtype="float32")
    np.testing.assert_allclose(layer(inputs), [[0.0, 0.0]], atol=TOLERANCE)


def test_quadratic_hand_computed() -> None:
    layer = Quadratic(1)
    layer.build((None, 2))
    a, b, c = np.array([[2.0], [1.0]]), np.array([[3.0], [-1.0]]), np.array([1.0])
    layer.set_weights([a, b, c])
    inputs = np.array([[1.0, 2.0], [-1.0, 0.0]], dtype="float32")
    # row 1: (1*2 + 4*1) + (1*3 - 2*1) + 1 = 6 + 1 + 1 = 8
    # row 2: (1*2 + 0*1) + (-1*3 + 0) + 1 = 2 - 3 + 1 = 0
    np.testing.assert_allclose(layer(inputs), [[8.0], [0.0]], atol=TOLERANCE)


def test_quadratic_applies_activation_last() -> None:
    layer = Quadratic(1, activation="sigmoid")
    layer.build((None, 1))
    layer.set_weights([np.array([[1.0]]), np.array([[-2.0]]), np.array([1.0])])
    # x = 1: 1 - 2 + 1 = 0, sigmoid(0) = 0.5
    np.testing.assert_allclose(layer(np.array([[1.0]], dtype="float32")), [[0.5]], atol=TOLERANCE)


def test_quadratic_weights_have_course_shapes_and_initial_values() -> None:
    layer = Quadratic(3)
    layer.build((None, 4))
    a, b, c = layer.get_weights()
    assert (a.shape, b.shape, c.shape) == ((4, 3), (4, 3), (3,))
    assert not np.allclose(a, 0) and not np.allclose(b, 0)
    np.testing.assert_array_equal(c, np.zeros(3))


def test_euclidean_distance_hand_computed() -> None:
    left = np.array([[0.0, 0.0], [1.0, 1.0]], dtype="float32")
    right = np.array([[3.0, 4.0], [1.0, 1.0]], dtype="float32")
    distances = EuclideanDistance(epsilon=1e-4)([left, right])
    # 3-4-5 triangle; identical rows hit the floor: sqrt(1e-4) = 0.01
    assert tuple(distances.shape) == (2, 1)
    np.testing.assert_allclose(distances, [[5.0], [0.01]], atol=TOLERANCE)


def test_euclidean_distance_gradient_is_finite_for_identical_embeddings() -> None:
    import tensorflow as tf

    left = tf.Variable(np.ones((1, 3), dtype="float32"))
    with tf.GradientTape() as tape:
        distance = EuclideanDistance()([left, tf.ones((1, 3))])
    assert np.all(np.isfinite(tape.gradient(distance, left)))


def test_euclidean_distance_symbolic_output_shape() -> None:
    left, right = keras.Input(shape=(5,)), keras.Input(shape=(5,))
    assert EuclideanDistance()([left, right]).shape == (None, 1)
    assert EuclideanDistance().compute_output_shape([(None, 5), (None, 5)]) == (None, 1)


def test_euclidean_distance_default_epsilon_is_keras_epsilon() -> None:
    assert EuclideanDistance().epsilon == keras.backend.epsilon()


# --- configs and validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "fields"),
    [
        (SimpleDense(4, activation="relu", bias_initializer="ones"), {"units": 4}),
        (Quadratic(3, activation="tanh", c_initializer="ones"), {"units": 3}),
        (EuclideanDistance(epsilon=1e-3), {"epsilon": 1e-3}),
    ],
)
def test_layer_config_round_trip(layer: keras.layers.Layer, fields: dict[str, Any]) -> None:
    config = layer.get_config()
    assert fields.items() <= config.items()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == config


def test_activation_and_initializers_survive_config() -> None:
    clone = Quadratic.from_config(
        Quadratic(2, activation="relu", a_initializer="ones").get_config()
    )
    assert clone.activation is keras.activations.relu
    assert isinstance(clone.a_initializer, keras.initializers.Ones)


def test_layers_are_registered_under_trainflow() -> None:
    for cls in (SimpleDense, Quadratic, EuclideanDistance):
        assert keras.saving.get_registered_name(cls) == f"trainflow>{cls.__name__}"


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: SimpleDense(0), ValueError, r"Expected .* Received: units=0"),
        (lambda: Quadratic(-1), ValueError, r"Expected .* Received: units=-1"),
        (
            lambda: Quadratic(3.0),  # type: ignore[arg-type]
            TypeError,
            r"Expected .* integer\. Received: units=3\.0",
        ),
        (lambda: SimpleDense(True), TypeError, r"Received: units=True"),
        (lambda: EuclideanDistance(epsilon=-1), ValueError, r"Expected .* Received: epsilon=-1"),
        (
            lambda: EuclideanDistance(epsilon="x"),  # type: ignore[arg-type]
            TypeError,
            r"Received: epsilon='x'",
        ),
        (lambda: SimpleDense(2, activation="nope"), ValueError, r"nope"),
    ],
)
def test_invalid_arguments_raise(make: Callable[[], Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make()


def test_euclidean_distance_rejects_a_single_tensor() -> None:
    with pytest.raises(
        ValueError, match=r"Expected .* list of two tensors .* input_shape=\(None, 4\)"
    ):
        EuclideanDistance()(keras.Input(shape=(4,)))


def test_euclidean_distance_rejects_mismatched_widths() -> None:
    with pytest.raises(ValueError, match=r"same last dimension"):
        EuclideanDistance()([keras.Input(shape=(4,)), keras.Input(shape=(3,))])


def test_dense_layers_reject_undefined_input_width() -> None:
    with pytest.raises(ValueError, match=r"last axis .* Received: input_shape=\(None, None\)"):
        Quadratic(1).build((None, None))


# --- training -------------------------------------------------------------------------

N_POINTS, STEPS, TARGET_MSE = 64, 300, 1e-3


@pytest.mark.parametrize("first", [Quadratic, SimpleDense])
def test_quadratic_model_overfits_a_parabola(first: type[keras.layers.Layer]) -> None:
    """y = 2x**2 + 3x + 1 is exact for one Quadratic unit; SimpleDense features feed it."""
    keras.utils.set_random_seed(SEED)
    x = np.linspace(-1.0, 1.0, N_POINTS, dtype="float32").reshape(-1, 1)
    y = 2 * x**2 + 3 * x + 1
    inputs = keras.Input(shape=(1,))
    features = first(4)(inputs)
    model = keras.Model(inputs, Quadratic(1)(features))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.05), loss="mse")
    # One epoch over the points repeated STEPS times: fit's per-epoch overhead dominates
    # otherwise, and full batches of the same 64 points make it the same optimisation.
    repeated_x, repeated_y = np.tile(x, (STEPS, 1)), np.tile(y, (STEPS, 1))
    model.fit(repeated_x, repeated_y, batch_size=N_POINTS, epochs=1, shuffle=False, verbose=0)
    assert float(model.evaluate(x, y, verbose=0)) < TARGET_MSE


# --- save / load in a fresh process -------------------------------------------------------


def _quadratic_model() -> keras.Model:
    inputs = keras.Input(shape=(3,))
    outputs = Quadratic(2, activation="tanh", c_initializer="random_normal")(inputs)
    return keras.Model(inputs, outputs)


def _simple_dense_model() -> keras.Model:
    inputs = keras.Input(shape=(3,))
    hidden = SimpleDense(4, activation="relu", bias_initializer="random_normal")(inputs)
    return keras.Model(inputs, SimpleDense(1)(hidden))


def _distance_model() -> keras.Model:
    left, right = keras.Input(shape=(3,)), keras.Input(shape=(3,))
    embed = SimpleDense(2)
    distance = EuclideanDistance(epsilon=1e-4)([embed(left), embed(right)])
    return keras.Model([left, right], distance)


MODELS: dict[str, tuple[Callable[[], keras.Model], int]] = {
    "quadratic": (_quadratic_model, 1),
    "simple_dense": (_simple_dense_model, 1),
    "euclidean_distance": (_distance_model, 2),
}


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Save every model; load them all in one child process (a TF import costs seconds)."""
    root = tmp_path_factory.mktemp("layers")
    rng = np.random.default_rng(SEED)
    keras.utils.set_random_seed(SEED)
    manifest: dict[str, dict[str, Any]] = {}
    expected: dict[str, np.ndarray] = {}
    for key, (build, n_inputs) in MODELS.items():
        model = build()
        model.save(root / f"{key}.keras")
        inputs = [rng.normal(size=(5, 3)).astype("float32") for _ in range(n_inputs)]
        paths = [root / f"{key}.input{i}.npy" for i in range(n_inputs)]
        for path, array in zip(paths, inputs, strict=True):
            np.save(path, array)
        manifest[key] = {
            "model": str(root / f"{key}.keras"),
            "inputs": [str(path) for path in paths],
            "prediction": str(root / f"{key}.prediction.npy"),
        }
        expected[key] = model.predict(inputs[0] if n_inputs == 1 else inputs, verbose=0)
    (root / "manifest.json").write_text(json.dumps(manifest))
    child = run_child(CHILD, root / "manifest.json")
    return {
        key: {
            "layers": child[key],
            "prediction": np.load(manifest[key]["prediction"]),
            "expected": expected[key],
        }
        for key in MODELS
    }


@pytest.mark.parametrize(
    ("key", "layers"),
    [
        ("quadratic", [("trainflow>Quadratic", {"units": 2, "activation": "tanh"})]),
        (
            "simple_dense",
            [
                ("trainflow>SimpleDense", {"units": 4, "activation": "relu"}),
                ("trainflow>SimpleDense", {"units": 1, "activation": "linear"}),
            ],
        ),
        (
            "euclidean_distance",
            [
                ("trainflow>SimpleDense", {"units": 2}),
                ("trainflow>EuclideanDistance", {"epsilon": 1e-4}),
            ],
        ),
    ],
)
def test_layer_survives_save_and_load_in_fresh_process(
    reloaded: dict[str, Any], key: str, layers: list[tuple[str, dict[str, Any]]]
) -> None:
    entry = reloaded[key]
    np.testing.assert_allclose(entry["prediction"], entry["expected"], rtol=0, atol=TOLERANCE)
    assert [layer["registered"] for layer in entry["layers"]] == [name for name, _ in layers]
    for layer, (_, fields) in zip(entry["layers"], layers, strict=True):
        assert fields.items() <= layer["config"].items()
