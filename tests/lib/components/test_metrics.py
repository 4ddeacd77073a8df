"""DistanceAccuracy: hand-computed values, the strict threshold, sample weights, config."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from lib.components import DistanceAccuracy, distance_accuracy

# Labels 1, 0, 1, 0 with distances 0.2, 0.7, 0.6, 0.1: called same, different, different,
# same, so the first two are right and the last two wrong.
Y_TRUE = np.array([1.0, 0.0, 1.0, 0.0], dtype="float32")
DISTANCES = np.array([[0.2], [0.7], [0.6], [0.1]], dtype="float32")


def test_distance_accuracy_hand_computed_per_pair() -> None:
    np.testing.assert_array_equal(distance_accuracy(Y_TRUE, DISTANCES), [1.0, 1.0, 0.0, 0.0])


def test_metric_averages_and_honours_sample_weight() -> None:
    metric = DistanceAccuracy()
    metric.update_state(Y_TRUE, DISTANCES)
    assert float(metric.result()) == pytest.approx(0.5)
    weighted = DistanceAccuracy()
    weighted.update_state(Y_TRUE, DISTANCES, sample_weight=np.array([3.0, 1.0, 0.0, 0.0]))
    assert float(weighted.result()) == pytest.approx(1.0)


def test_threshold_is_strict_and_configurable() -> None:
    at_threshold = np.array([[0.5]], dtype="float32")
    assert float(distance_accuracy(np.array([1.0]), at_threshold)[0]) == 0.0
    metric = DistanceAccuracy(threshold=0.65)
    metric.update_state(Y_TRUE, DISTANCES)
    assert float(metric.result()) == pytest.approx(0.75)  # 0.6 now counts as same


def test_config_round_trip_through_keras_serialisation() -> None:
    metric = DistanceAccuracy(threshold=0.3, name="acc_at_0.3")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert isinstance(restored, DistanceAccuracy)
    assert (restored.threshold, restored.name) == (0.3, "acc_at_0.3")
    assert keras.saving.get_registered_name(DistanceAccuracy) == "trainflow>DistanceAccuracy"


@pytest.mark.parametrize(("threshold", "error"), [(0.0, ValueError), ("0.5", TypeError)])
def test_rejects_bad_thresholds(threshold: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="threshold"):
        DistanceAccuracy(threshold=threshold)  # type: ignore[arg-type]
