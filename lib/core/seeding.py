"""A fit's random draws from its own seeded generator, whatever other threads are doing.

`keras.utils.set_random_seed` seeds Python's global `random`, and Keras draws the default
seed of every initializer (and every `SeedGenerator` made without one) from it. Any other
thread of the process that calls `random` in between (a Dask worker's and Prefect's
background threads do) shifts those draws: two fits of the same recipe and seed on a busy
2-worker cluster gave validation RMSEs 0.5 apart. `seeded` points Keras at a generator of
this thread's own, seeded like the global one, so an undisturbed fit draws exactly what it
drew before and a disturbed one no longer differs.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator

import keras
from keras.src.random import seed_generator  # the module that draws the default seeds

_local = threading.local()


class _ThisThreadsRandom:
    """What Keras calls `python_random`: this thread's seeded generator inside `seeded`,
    Python's global one elsewhere."""

    def __getattr__(self, name: str) -> object:
        return getattr(getattr(_local, "rng", None) or random, name)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python, NumPy, TensorFlow and Keras; Keras' default seeds come from this thread."""
    keras.utils.set_random_seed(seed)
    if not isinstance(seed_generator.python_random, _ThisThreadsRandom):
        seed_generator.python_random = _ThisThreadsRandom()
    _local.rng = random.Random(seed)
    try:
        yield
    finally:
        del _local.rng
