"""The siamese model: shared base network, distance output, presets, reload, tiny overfit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pydantic
import pytest

from lib.components import ContrastiveLoss, EuclideanDistance
from lib.siamese.data import pair_dataset
from lib.siamese.model import (
    InBatchTrainer,
    build_base_network,
    build_siamese_model,
    in_batch_labels,
    trainable_model,
    training_dataset,
)
from lib.siamese.recipes import PRESETS, SiameseRecipe

REPO_ROOT = Path(__file__).resolve().parents[3]
SEED = 0
# Small enough to train in seconds, with each kind of layer the presets use.
TINY = SiameseRecipe(
    conv_filters=(4,),
    dense_units=(16, 8),
    dropout=0.1,
    embedding_activation="linear",
    optimizer="adam",
    learning_rate=3e-3,
    epochs=8,
    batch_size=32,
    pairs="course",
)

CHILD = """
import json, sys
import numpy as np
import keras
import lib.components  # registers the trainflow objects; nothing else is passed to load_model

folder = sys.argv[1]
model = keras.saving.load_model(f"{folder}/model.keras", safe_mode=True)
inputs = {"left": np.load(f"{folder}/left.npy"), "right": np.load(f"{folder}/right.npy")}
np.save(f"{folder}/prediction.npy", model.predict(inputs, verbose=0))
result = model.evaluate(inputs, np.load(f"{folder}/label.npy"), verbose=0, return_dict=True)
print(json.dumps({
    "loss": keras.saving.get_registered_name(type(model.loss)),
    "margin": model.loss.margin,
    "evaluate": result,
    "layers": [layer.name for layer in model.layers],
}))
"""


def _pixels(n: int, seed: int = SEED) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28)).astype("float32")


def test_course_preset_is_the_course_recipe() -> None:
    recipe = PRESETS["course"]
    model = build_siamese_model(recipe)
    base = model.get_layer("base_network")
    summary = [
        (type(layer).__name__, layer.get_config().get("units"), layer.get_config().get("rate"))
        for layer in base.layers[1:]
    ]
    assert summary == [
        ("Rescaling", None, None),
        ("Flatten", None, None),
        ("Dense", 128, None),
        ("Dropout", None, 0.1),
        ("Dense", 128, None),
        ("Dropout", None, 0.1),
        ("Dense", 128, None),
    ]
    assert all(layer.get_config()["activation"] == "relu" for layer in base.layers[3::2])
    assert base.get_layer("rescale").get_config()["scale"] == pytest.approx(1 / 255)
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    assert isinstance(model.loss, ContrastiveLoss) and model.loss.margin == 1.0
    assert (recipe.batch_size, recipe.epochs, recipe.pairs) == (128, 20, "course")


def test_every_preset_builds_a_model_with_the_serving_interface() -> None:
    for name, recipe in PRESETS.items():
        model = build_siamese_model(recipe, steps_per_epoch=10)
        assert sorted(model.input) == ["left", "right"], name
        assert model.output.name.startswith("distance") or model.layers[-1].name == "distance"
        assert isinstance(model.layers[-1], EuclideanDistance), name


@pytest.mark.parametrize(
    ("downsample", "layers", "features"),
    [
        # 28 -conv-> 26 -pool-> 13 -conv-> 11 -pool-> 5: 5 * 5 * 8 features.
        ("pool", ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D"], 200),
        # 28 -conv/2-> 13 -conv/2-> 6: 6 * 6 * 8 features.
        ("stride", ["Conv2D", "Conv2D"], 288),
    ],
)
def test_convolutions_halve_the_image_by_pooling_or_stride(
    downsample: str, layers: list[str], features: int
) -> None:
    recipe = TINY.model_copy(update={"conv_filters": (4, 8), "downsample": downsample})
    base = build_base_network(recipe)
    kinds = [type(layer).__name__ for layer in base.layers]
    assert [kind for kind in kinds if kind in ("Conv2D", "MaxPooling2D")] == layers
    assert base.get_layer("flatten").output.shape == (None, features)


def test_base_network_is_one_object_used_for_both_inputs() -> None:
    model = build_siamese_model(TINY)
    # Two inputs, one base network (called on each), one distance: nothing else to share.
    assert [layer.name for layer in model.layers] == ["left", "right", "base_network", "distance"]
    base = model.get_layer("base_network")
    assert isinstance(base, keras.Model)
    # No second copy of any weight: the model's trainable weights are the base's.
    assert len(model.trainable_weights) == len(base.trainable_weights)
    left, right = _pixels(3, 1), _pixels(3, 2)
    distance = model.predict({"left": left, "right": right}, verbose=0)
    embeddings = base.predict(left, verbose=0), base.predict(right, verbose=0)
    expected = np.linalg.norm(embeddings[0] - embeddings[1], axis=1, keepdims=True)
    np.testing.assert_allclose(distance, expected, rtol=1e-4, atol=1e-5)


def test_distance_has_one_value_per_pair_and_is_symmetric() -> None:
    model = build_siamese_model(TINY)
    left, right = _pixels(5, 1), _pixels(5, 2)
    forward = model.predict({"left": left, "right": right}, verbose=0)
    backward = model.predict({"left": right, "right": left}, verbose=0)
    assert forward.shape == (5, 1)
    np.testing.assert_allclose(forward, backward, rtol=1e-5)


def test_identical_images_are_at_distance_sqrt_epsilon() -> None:
    model = build_siamese_model(TINY)
    images = _pixels(4)
    distance = model.predict({"left": images, "right": images}, verbose=0)
    np.testing.assert_allclose(distance, np.sqrt(keras.backend.epsilon()), rtol=1e-3)


def test_base_network_rescales_raw_pixels_itself() -> None:
    base = build_base_network(TINY)
    rescale = base.get_layer("rescale")
    np.testing.assert_allclose(rescale(np.full((1, 28, 28), 255.0)), 1.0, rtol=1e-6)


def test_model_is_compiled_with_contrastive_loss_and_distance_accuracy() -> None:
    model = build_siamese_model(TINY.model_copy(update={"margin": 2.0}))
    assert isinstance(model.loss, ContrastiveLoss) and model.loss.margin == 2.0
    (metric,) = model.get_compile_config()["metrics"]
    assert metric["registered_name"] == "trainflow>DistanceAccuracy"
    assert metric["config"]["threshold"] == 0.5
    history = model.fit(
        {"left": _pixels(4, 1), "right": _pixels(4, 2)}, np.ones(4), epochs=1, verbose=0
    )
    assert {"loss", "accuracy"} <= set(history.history)


def _fit_save_and_reload(
    model: keras.Model, folder: Path
) -> tuple[dict[str, Any], np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Fit `model` an epoch on six pairs, save it, and load it in a fresh process (`CHILD`,
    safe mode): the child's report, its predictions, and the pairs (left, right, label)."""
    left, right = _pixels(6, 1), _pixels(6, 2)
    label = np.array([1, 0, 1, 0, 1, 0], dtype="float32")
    model.fit({"left": left, "right": right}, label, epochs=1, verbose=0)
    model.save(folder / "model.keras")
    for name, value in (("left", left), ("right", right), ("label", label)):
        np.save(folder / f"{name}.npy", value)
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    return report, np.load(folder / "prediction.npy"), (left, right, label)


def test_save_and_load_in_a_fresh_process_gives_identical_predictions(tmp_path: Path) -> None:
    model = build_siamese_model(TINY)
    report, prediction, (left, right, label) = _fit_save_and_reload(model, tmp_path)
    expected = model.predict({"left": left, "right": right}, verbose=0)
    np.testing.assert_allclose(prediction, expected, rtol=1e-6)
    assert report["loss"] == "trainflow>ContrastiveLoss" and report["margin"] == 1.0
    assert set(report["evaluate"]) == {"loss", "accuracy"}
    wanted = model.evaluate({"left": left, "right": right}, label, verbose=0, return_dict=True)
    assert report["evaluate"] == pytest.approx(wanted, rel=1e-5)
    assert report["layers"].count("base_network") == 1


def test_tiny_model_learns_to_separate_two_kinds_of_noise() -> None:
    # 200 noise images of two "classes" of equal brightness: a bright left half or a bright
    # right half. A fresh network tells them apart no better than chance would suggest.
    rng = np.random.default_rng(SEED)
    classes = np.repeat([0, 1], 100)
    bright = np.zeros((200, 28, 28), dtype=np.int64)
    bright[classes == 0, :, :14] = 135
    bright[classes == 1, :, 14:] = 135
    images = (bright + rng.integers(0, 121, size=(200, 28, 28))).astype(np.uint8)
    left, right = rng.integers(0, 200, size=(2, 800))
    label = (classes[left] == classes[right]).astype("float32")
    keras.utils.set_random_seed(SEED)
    model = build_siamese_model(TINY)
    inputs = {"left": images[left].astype("float32"), "right": images[right].astype("float32")}
    before = model.evaluate(inputs, label, verbose=0, return_dict=True)
    model.fit(inputs, label, batch_size=32, epochs=5, verbose=0)
    after = model.evaluate(inputs, label, verbose=0, return_dict=True)
    assert before["accuracy"] < 0.8
    assert after["loss"] < before["loss"] / 10
    assert after["accuracy"] >= 0.98


def test_training_dataset_follows_the_recipes_pair_protocol() -> None:
    rng = np.random.default_rng(SEED)
    labels = np.tile(np.arange(10), 5).astype(np.uint8)
    images = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    indices = np.arange(40)  # the last image of each class held out
    course = training_dataset(TINY.model_copy(update={"batch_size": 4}), images, labels, indices, 1)
    # 4 training images per class: 2 * 10 * 3 course pairs, in batches of 4.
    assert len(course) == 15
    balanced = TINY.model_copy(update={"pairs": "balanced", "pairs_per_epoch": 30})
    dataset = training_dataset(balanced, images, labels, indices, 1)
    assert sum(len(label) for _, label in dataset) == 30 and len(dataset) == 1
    in_batch = TINY.model_copy(update={"pairs": "in_batch", "batch_size": 16})
    batches = list(training_dataset(in_batch, images, labels, indices, 1))
    # 40 training images make 2 full batches of 16 images (the last 8 wait for the next epoch).
    assert [pixels.shape for pixels, _ in batches] == [(16, 28, 28)] * 2


@pytest.mark.parametrize(
    ("update", "match"),
    [
        ({"pairs": "balanced"}, "even pairs_per_epoch with pairs='balanced'"),
        ({"pairs": "balanced", "pairs_per_epoch": 31}, "Received: pairs_per_epoch=31"),
        ({"pairs_per_epoch": 30}, "no pairs_per_epoch with pairs='course'"),
        ({"dropout": 1.0}, "dropout"),
        ({"pairs": "triplets"}, "pairs"),
        ({"shuffle": True}, "Extra inputs are not permitted"),
        ({"learning_rate_schedule": "cosine"}, "pairs='balanced' or 'in_batch' with learning"),
        ({"pairs": "in_batch", "batch_norm": True}, "batch_norm=False with pairs='in_batch'"),
        (
            {"pairs": "in_batch", "pairs_per_epoch": 30},
            "no pairs_per_epoch with pairs='in_batch'",
        ),
        (
            {
                "learning_rate_schedule": "cosine",
                "pairs": "balanced",
                "pairs_per_epoch": 30,
                "reduce_lr_patience": 2,
            },
            "no reduce_lr_patience with learning_rate_schedule='cosine'",
        ),
    ],
)
def test_recipe_rejects_inconsistent_settings(update: dict[str, object], match: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=match):
        SiameseRecipe.model_validate({**TINY.model_dump(), **update})


def test_cosine_schedule_decays_to_zero_over_all_training_steps() -> None:
    recipe = TINY.model_copy(
        update={
            "pairs": "balanced",
            "pairs_per_epoch": 100,
            "learning_rate_schedule": "cosine",
            "epochs": 3,
            "batch_size": 32,
        }
    )
    config = build_siamese_model(recipe).optimizer.get_config()["learning_rate"]
    schedule = keras.optimizers.schedules.deserialize(config)
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    # 100 pairs in batches of 32 make 4 steps an epoch: 12 steps in all.
    assert schedule.decay_steps == 12
    assert float(schedule(0)) == pytest.approx(recipe.learning_rate)
    assert float(schedule(12)) == pytest.approx(0.0, abs=1e-9)


def test_in_batch_cosine_schedule_counts_steps_from_the_training_images() -> None:
    recipe = TINY.model_copy(
        update={"pairs": "in_batch", "learning_rate_schedule": "cosine", "epochs": 3}
    )
    # 100 images in full batches of 32 make 3 steps an epoch: 9 steps in all.
    model, trainer = trainable_model(recipe, 100)
    assert isinstance(trainer, InBatchTrainer) and trainer.siamese is model
    assert trainer.optimizer is model.optimizer  # saved with the model, trained state and all
    config = model.optimizer.get_config()["learning_rate"]
    assert keras.optimizers.schedules.deserialize(config).decay_steps == 9
    with pytest.raises(ValueError, match="Expected steps_per_epoch for a cosine schedule"):
        build_siamese_model(recipe)


def test_in_batch_labels_weigh_same_and_different_pairs_half_each() -> None:
    same, weight = (np.asarray(t) for t in in_batch_labels(np.array([0, 0, 0, 1], np.int32)))
    expected_same = np.array(
        [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 1]], dtype=np.float32
    )
    np.testing.assert_array_equal(same, expected_same.ravel())
    weight = weight.reshape(4, 4)
    np.testing.assert_array_equal(np.diag(weight), 0.0)  # an image with itself
    off_diagonal = ~np.eye(4, dtype=bool)
    positive, negative = off_diagonal & (expected_same == 1), expected_same == 0
    # 6 same-class and 6 different-class pairs, each side half of the 16 entries' weight.
    assert weight[positive].sum() == pytest.approx(8.0)
    assert weight[negative].sum() == pytest.approx(8.0)
    np.testing.assert_allclose(weight[positive], weight[positive][0])


def test_in_batch_training_teaches_the_served_two_input_model() -> None:
    # The noise classes of the test below, trained on every pair within batches of images.
    rng = np.random.default_rng(SEED)
    classes = np.repeat([0, 1], 100).astype(np.uint8)
    bright = np.zeros((200, 28, 28), dtype=np.int64)
    bright[classes == 0, :, :14] = 135
    bright[classes == 1, :, 14:] = 135
    images = (bright + rng.integers(0, 121, size=(200, 28, 28))).astype(np.uint8)
    recipe = TINY.model_copy(update={"pairs": "in_batch", "epochs": 4})
    keras.utils.set_random_seed(SEED)
    model, trainer = trainable_model(recipe, 200)
    left, right = rng.integers(0, 200, size=(2, 400))
    label = (classes[left] == classes[right]).astype("float32")
    inputs = {"left": images[left].astype("float32"), "right": images[right].astype("float32")}
    before = model.evaluate(inputs, label, verbose=0, return_dict=True)
    history = trainer.fit(
        training_dataset(recipe, images, classes, np.arange(200), SEED),
        epochs=4,
        shuffle=False,
        verbose=0,
    )
    after = model.evaluate(inputs, label, verbose=0, return_dict=True)
    assert {"loss", "accuracy"} <= set(history.history)
    assert after["loss"] < before["loss"] / 5 and after["accuracy"] >= 0.98
    # What is saved and served is the plain siamese model, not the trainer.
    assert [layer.name for layer in model.layers] == ["left", "right", "base_network", "distance"]


def test_batch_norm_sits_between_each_convolution_and_its_relu() -> None:
    recipe = TINY.model_copy(update={"conv_filters": (4, 8), "batch_norm": True})
    kinds = [type(layer).__name__ for layer in build_base_network(recipe).layers]
    conv_block = ["Conv2D", "BatchNormalization", "Activation", "MaxPooling2D"]
    assert kinds[3:11] == conv_block * 2
    assert build_base_network(recipe).get_layer("conv_1").get_config()["use_bias"] is False


def test_recipe_is_frozen() -> None:
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        TINY.epochs = 3  # type: ignore[misc]


def test_pair_dataset_feeds_the_model() -> None:
    from lib.siamese.pairs import course_pairs

    labels = np.repeat(np.arange(10), 3).astype(np.uint8)
    images = np.random.default_rng(SEED).integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    pairs = course_pairs(labels, np.random.default_rng(SEED))
    model = build_siamese_model(TINY)
    distance = model.predict(pair_dataset(images, pairs, 16), verbose=0)
    assert distance.shape == (len(pairs), 1)


def test_bfloat16_base_network_reloads_in_safe_mode_with_float32_distances(
    tmp_path: Path,
) -> None:
    recipe = TINY.model_copy(update={"precision": "mixed_bfloat16"})
    model = build_siamese_model(recipe)
    base = model.get_layer("base_network")
    # Each layer carries its own policy: the process-wide one is left alone.
    assert keras.config.dtype_policy().name == "float32"
    assert base.get_layer("conv_1").dtype_policy.name == "mixed_bfloat16"
    assert base.get_layer("dense_1").compute_dtype == "bfloat16"
    assert base.get_layer("conv_1").kernel.dtype == "float32"  # weights stay float32
    assert base.get_layer("dense_2").dtype_policy.name == "float32"  # the embedding
    assert model.get_layer("distance").dtype_policy.name == "float32"
    _, prediction, (left, right, _) = _fit_save_and_reload(model, tmp_path)
    expected = model.predict({"left": left, "right": right}, verbose=0)
    assert expected.dtype == np.float32
    assert prediction.dtype == np.float32
    np.testing.assert_allclose(prediction, expected, rtol=1e-6)
