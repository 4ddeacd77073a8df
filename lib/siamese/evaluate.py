"""Score a siamese model: calibrate the threshold on validation pairs, measure on test pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lib.core.evaluation import Evaluated
from lib.core.keras_files import load_model
from lib.core.plots import learning_curves
from lib.siamese.constants import EVALUATION_BATCH, TRAINED_THRESHOLD
from lib.siamese.data import pair_dataset
from lib.siamese.idx import read_image_table
from lib.siamese.metrics import calibrate_threshold, classification_metrics, roc_auc, roc_curve
from lib.siamese.pairs import Pairs, read_pairs
from lib.siamese.plots import distance_histograms, pair_grid, roc_plot


def pair_distances(model: Any, images: np.ndarray, pairs: Pairs) -> np.ndarray:
    """Distances a Keras siamese model gives `pairs` of `images`, as float64."""
    predicted = model.predict(pair_dataset(images, pairs, EVALUATION_BATCH), verbose=0)
    return np.ravel(predicted).astype("float64")


PAIR_METRICS = ("accuracy", "accuracy_at_0.5", "precision", "recall", "f1", "roc_auc", "threshold")
"""The keys of `pair_metrics`, in its order (a diverged model's validation reports them NaN)."""


def pair_metrics(labels: np.ndarray, distances: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy at the course's 0.5 and at `threshold`, precision/recall there, and ROC AUC."""
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


def calibrated_metrics(
    model: Any,
    train_images: np.ndarray,
    validation: Pairs,
    test_images: np.ndarray,
    test: Pairs,
) -> tuple[dict[str, float], np.ndarray]:
    """Test metrics at the threshold calibrated on the validation pairs, and test distances."""
    threshold = calibrate_threshold(
        validation.label, pair_distances(model, train_images, validation)
    )
    distances = pair_distances(model, test_images, test)
    return pair_metrics(test.label, distances, threshold), distances


def evaluate_siamese(
    model_path: Path,
    history_path: Path,
    train_table: Path,
    test_table: Path,
    validation_pairs: Path,
    test_pairs: Path,
    folder: Path,
) -> Evaluated:
    """`calibrated_metrics` of a stored model, and its four plots in `folder`."""
    train_images, _ = read_image_table(train_table)
    test_images, _ = read_image_table(test_table)
    test = read_pairs(test_pairs)
    metrics, distances = calibrated_metrics(
        load_model(model_path), train_images, read_pairs(validation_pairs), test_images, test
    )
    threshold = metrics["threshold"]
    fpr, tpr, _ = roc_curve(test.label, -distances)
    history = json.loads(Path(history_path).read_text())
    plots = (
        distance_histograms(distances, test.label, threshold, folder / "distances.png"),
        roc_plot(fpr, tpr, metrics["roc_auc"], folder / "roc.png"),
        learning_curves(history, folder / "learning-curves.png"),
        pair_grid(test_images, test, distances, threshold, folder / "pairs.png"),
    )
    return Evaluated(metrics=metrics, test_rows=len(test), plots=plots)


def score_pyfunc(pyfunc: Any, test_table: Path, test_pairs: Path) -> dict[str, float]:
    """Metrics of a registered model (an MLflow pyfunc) on the same test pairs.

    The pairs go to the Keras model the pyfunc loaded, batch by batch from the image array;
    a DataFrame of 784-pixel cells per pair would cost far more. The threshold is the one the
    pyfunc itself serves with.
    """
    wrapper = pyfunc.unwrap_python_model()
    test_images, _ = read_image_table(test_table)
    test = read_pairs(test_pairs)
    distances = pair_distances(wrapper.keras_model, test_images, test)
    return pair_metrics(test.label, distances, wrapper.threshold)
