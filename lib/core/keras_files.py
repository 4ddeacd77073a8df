"""Load a saved `.keras` model whose layers and losses are trainflow's custom objects.

It lives outside `lib.components` on purpose: importing anything from that package runs its
`__init__`, which registers the objects and so imports Keras and TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_model(path: str | Path) -> Any:
    """The model at `path`, loaded with `safe_mode=True` (no code from the file runs).

    Keras and the custom objects are imported here, not by the caller's module, so that code
    which only might load a model does not pay TensorFlow's start-up.
    """
    import keras

    import lib.components  # noqa: F401  registers the trainflow custom objects

    return keras.saving.load_model(path, safe_mode=True)
