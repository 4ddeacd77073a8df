"""Siamese Fashion-MNIST tasks: IDX -> Parquet, index pairs, training, evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from prefect import task
from prefect.logging import get_run_logger

from lib.atomic import atomic_path
from lib.refs import FileRef
from lib.siamese_model import SiameseRecipe
from tasks.caching import ContentCache
from tasks.descriptors import ChampionRef, Evaluation, PairsRef, TableRef, TrainedModel
from tasks.fitting import fit_and_save
from tasks.storage import output_dir

TABLE_MODULES = ("lib.idx", "lib.provenance", "lib.atomic")
PAIR_MODULES = ("lib.pairs", "lib.provenance", "lib.atomic")
TRAIN_MODULES = (
    "lib.siamese_model",
    "lib.siamese_data",
    "lib.training",
    "lib.components",
    "lib.pairs",
)
EVALUATE_MODULES = ("lib.evaluation", "lib.plots", "lib.siamese_data")
# Share of training images held out to build validation pairs (threshold calibration too).
VALIDATION_FRACTION = 0.1
EVALUATION_BATCH = 1024


@task(
    task_run_name="idx-to-parquet-{part}",
    cache_policy=ContentCache(modules=TABLE_MODULES),
    persist_result=True,
)
def idx_to_parquet(images: FileRef, labels: FileRef, part: str) -> TableRef:
    """Check the IDX files and store images + labels as one Parquet table."""
    from lib.hashing import code_version
    from lib.idx import idx_to_parquet as convert

    target = (
        output_dir("data/fashion", images.sha256, labels.sha256, modules=TABLE_MODULES)
        / f"{part}.parquet"
    )
    rows = convert(
        Path(images.path),
        Path(labels.path),
        target,
        source_sha256={"images": images.sha256, "labels": labels.sha256},
        code_version=code_version(TABLE_MODULES),
    )
    get_run_logger().info("%s: %d images written to %s", part, rows, target)
    return TableRef(table=FileRef.of(target), source=images, rows=rows)


@task(
    task_run_name="make-pairs-seed{seed}",
    cache_policy=ContentCache(modules=PAIR_MODULES),
    persist_result=True,
)
def make_pairs(train: TableRef, test: TableRef, seed: int) -> PairsRef:
    """Hold out training images for validation; build validation and test index pairs.

    Training pairs are drawn inside the input pipeline (fixed course pairs, or fresh ones
    every epoch) from the kept training images only; test pairs come only from test images.
    """
    from lib.idx import read_image_table
    from lib.pairs import course_pairs, split_indices, write_pairs

    _, train_labels = read_image_table(Path(train.table.path))
    _, test_labels = read_image_table(Path(test.table.path))
    rng = np.random.default_rng(seed)
    kept, held_out = split_indices(train_labels, VALIDATION_FRACTION, rng)
    folder = output_dir(
        "pairs/fashion", train.table.sha256, test.table.sha256, str(seed), modules=PAIR_MODULES
    )
    provenance = {"seed": seed, "train_table": train.table.sha256, "test_table": test.table.sha256}
    validation = course_pairs(train_labels, rng, indices=held_out)
    test_pairs = course_pairs(test_labels, np.random.default_rng(seed))
    write_pairs(validation, folder / "validation.parquet", {**provenance, "part": "validation"})
    write_pairs(test_pairs, folder / "test.parquet", {**provenance, "part": "test"})
    with atomic_path(folder / "train-indices.npy") as temporary:
        np.save(temporary, kept)
    get_run_logger().info(
        "%d training images kept, %d validation pairs, %d test pairs",
        len(kept),
        len(validation.label),
        len(test_pairs.label),
    )
    return PairsRef(
        train_indices=FileRef.of(folder / "train-indices.npy"),
        validation=FileRef.of(folder / "validation.parquet"),
        test=FileRef.of(folder / "test.parquet"),
        seed=seed,
    )


@task(
    task_run_name="train-siamese-{preset}-seed{seed}",
    cache_policy=ContentCache(modules=TRAIN_MODULES),
    persist_result=True,
)
def train(
    train_table: TableRef, pairs: PairsRef, recipe: SiameseRecipe, preset: str, seed: int
) -> TrainedModel:
    """Fit the siamese model; images are gathered by index batch by batch, never copied."""
    import keras

    from lib.idx import read_image_table
    from lib.pairs import read_pairs
    from lib.siamese_data import pair_dataset
    from lib.siamese_model import build_siamese_model, training_dataset

    folder = output_dir(
        "models/siamese",
        train_table.table.sha256,
        pairs.train_indices.sha256,
        pairs.validation.sha256,
        recipe.model_dump_json(),
        str(seed),
        modules=TRAIN_MODULES,
    )
    images, labels = read_image_table(Path(train_table.table.path))
    kept = np.load(pairs.train_indices.path)
    keras.utils.set_random_seed(seed)
    model = build_siamese_model(recipe)
    return fit_and_save(
        model,
        training_dataset(recipe, images, labels, kept, seed),
        pair_dataset(images, read_pairs(Path(pairs.validation.path)), EVALUATION_BATCH),
        recipe,
        folder=folder,
        pipeline="siamese",
        description=f"siamese ({preset}, seed {seed})",
    )


def pair_distances(model: Any, images: np.ndarray, pairs_path: str) -> tuple[np.ndarray, Any]:
    """Distances the model gives the stored pairs, with the pairs themselves."""
    from lib.pairs import read_pairs
    from lib.siamese_data import pair_dataset

    pairs = read_pairs(Path(pairs_path))
    predicted = model.predict(pair_dataset(images, pairs, EVALUATION_BATCH), verbose=0)
    return np.ravel(predicted).astype("float64"), pairs


def pair_metrics(labels: np.ndarray, distances: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy at the course's 0.5 and at `threshold`, precision/recall there, and ROC AUC."""
    from lib.evaluation import classification_metrics, roc_auc
    from lib.siamese_model import TRAINED_THRESHOLD

    at_threshold = classification_metrics(labels, distances, threshold)
    return {
        "accuracy": at_threshold["accuracy"],
        "accuracy_at_0.5": classification_metrics(labels, distances, TRAINED_THRESHOLD)["accuracy"],
        "precision": at_threshold["precision"],
        "recall": at_threshold["recall"],
        "f1": at_threshold["f1"],
        "roc_auc": roc_auc(labels, -distances),
        "threshold": threshold,
    }


def _load(model_path: str) -> Any:
    import keras

    import lib.components  # noqa: F401  registers custom objects

    return keras.saving.load_model(model_path, safe_mode=True)


@task(
    task_run_name="evaluate-siamese-{trained.model.sha256:.8}",
    cache_policy=ContentCache(modules=EVALUATE_MODULES),
    persist_result=True,
)
def evaluate(
    trained: TrainedModel, train_table: TableRef, test_table: TableRef, pairs: PairsRef
) -> Evaluation:
    """Calibrate the threshold on validation pairs; measure and plot on the test pairs."""
    from lib.evaluation import calibrate_threshold, roc_curve
    from lib.idx import read_image_table
    from lib.plots import distance_histograms, learning_curves, pair_grid, roc_plot

    model = _load(trained.model.path)
    train_images, _ = read_image_table(Path(train_table.table.path))
    test_images, _ = read_image_table(Path(test_table.table.path))
    val_distances, val_pairs = pair_distances(model, train_images, pairs.validation.path)
    threshold = calibrate_threshold(val_pairs.label, val_distances)
    distances, test_pairs = pair_distances(model, test_images, pairs.test.path)
    metrics = pair_metrics(test_pairs.label, distances, threshold)
    fpr, tpr, _ = roc_curve(test_pairs.label, -distances)
    folder = output_dir("reports/siamese", trained.model.sha256, pairs.test.sha256)
    history = json.loads(Path(trained.history.path).read_text())
    plots = (
        distance_histograms(distances, test_pairs.label, threshold, folder / "distances.png"),
        roc_plot(fpr, tpr, metrics["roc_auc"], folder / "roc.png"),
        learning_curves(history, folder / "learning-curves.png"),
        pair_grid(test_images, test_pairs, distances, threshold, folder / "pairs.png"),
    )
    get_run_logger().info(
        "test accuracy %.4f at calibrated threshold %.3f (%.4f at 0.5), ROC AUC %.4f",
        metrics["accuracy"],
        threshold,
        metrics["accuracy_at_0.5"],
        metrics["roc_auc"],
    )
    return Evaluation(metrics=metrics, plots=tuple(FileRef.of(p) for p in plots))


@task(
    task_run_name="evaluate-champion-siamese-v{champion.version}",
    cache_policy=ContentCache(modules=EVALUATE_MODULES),
    persist_result=True,
)
def evaluate_champion(champion: ChampionRef, test_table: TableRef, pairs: PairsRef) -> ChampionRef:
    """The champion, at its registered threshold, on the candidate's test pairs."""
    import mlflow.artifacts

    from lib.idx import read_image_table
    from tasks.registry import client_for

    client = client_for(champion.name)
    version = client.get_model_version(champion.name, champion.version)
    threshold = float(version.tags["trainflow.threshold"])
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{champion.name}/{champion.version}"))
    # MLflow keeps the logged file's own name (model.keras) under artifacts/.
    model = _load(str(next(local.rglob("*.keras"))))
    test_images, _ = read_image_table(Path(test_table.table.path))
    distances, test_pairs = pair_distances(model, test_images, pairs.test.path)
    metrics = pair_metrics(test_pairs.label, distances, threshold)
    get_run_logger().info(
        "champion v%s on the same test pairs: accuracy %.4f", champion.version, metrics["accuracy"]
    )
    return champion.model_copy(update={"metrics": metrics})
