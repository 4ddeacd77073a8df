"""Keras' default seeds inside `seeded` ignore what other threads do with `random`."""

from __future__ import annotations

import random
import threading

import keras
import numpy as np

from lib.core.seeding import seeded


def _initial_weights(seed: int, *, meanwhile: int = 0) -> list[np.ndarray]:
    """A Dense layer's first weights, with `meanwhile` draws from `random` by another thread
    between seeding and building (deterministically: that thread is joined first)."""
    with seeded(seed):
        other = threading.Thread(target=lambda: [random.random() for _ in range(meanwhile)])
        other.start()
        other.join()
        layer = keras.layers.Dense(4)  # its initializers draw their seeds from `random`
        layer.build((None, 3))
        return [np.array(w) for w in layer.get_weights()]


def test_another_threads_draws_change_nothing() -> None:
    undisturbed = _initial_weights(0)
    disturbed = _initial_weights(0, meanwhile=3)

    assert all(np.array_equal(a, b) for a, b in zip(undisturbed, disturbed, strict=True))
    assert not np.array_equal(undisturbed[0], _initial_weights(1)[0])


def test_a_seeded_draw_is_what_the_global_generator_would_have_drawn() -> None:
    keras.utils.set_random_seed(5)
    expected = random.randint(1, int(1e9))
    with seeded(5):
        from keras.src.random.seed_generator import make_default_seed

        assert make_default_seed() == expected
    assert isinstance(random.random(), float)  # outside, the global generator as before
