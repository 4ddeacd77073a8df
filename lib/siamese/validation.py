"""Score a trained siamese model on its validation pairs: what a sweep picks by.

The threshold is calibrated on the same validation pairs, as `evaluate` does before it moves
to the test pairs; the test pairs judge only the sweep's winner (and the champion gate).
The stages it calls are imported in the function: flows read `SCORE` without starting
TensorFlow, which `lib.siamese.evaluate` imports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lib.core.sweep import ValidationScore

SCORE = ValidationScore("accuracy", lower_is_better=False)
"""Pair accuracy at the threshold calibrated on these pairs, as the test metric is measured."""


def validation_metrics(
    model_path: Path, train_table: Path, validation_pairs: Path
) -> dict[str, float]:
    """Accuracy, precision, recall, ROC AUC and the threshold on the validation pairs.

    A model whose training diverged gives NaN or infinite distances; every metric is then
    NaN rather than an error, so a sweep goes on to its other trials and picks none of these.
    """
    from lib.core.keras_files import load_model
    from lib.siamese.evaluate import PAIR_METRICS, pair_distances, pair_metrics
    from lib.siamese.idx import read_image_table
    from lib.siamese.metrics import calibrate_threshold
    from lib.siamese.pairs import read_pairs

    images, _ = read_image_table(train_table)
    pairs = read_pairs(validation_pairs)
    distances = pair_distances(load_model(model_path), images, pairs)
    if not np.isfinite(distances).all():
        return dict.fromkeys(PAIR_METRICS, float("nan"))
    return pair_metrics(pairs.label, distances, calibrate_threshold(pairs.label, distances))
