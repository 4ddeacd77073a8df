"""`load_model` runs nothing a `.keras` file carries: no Lambda bytecode, no function by name."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import keras
import pytest

from lib.core.keras_files import load_model


def _touching(marker: Path) -> Any:
    """A Lambda whose Python function creates `marker` whenever the model is built."""
    target = str(marker)  # a closure the config can hold; the lambda imports what it needs
    return keras.layers.Lambda(
        lambda x: (__import__("pathlib").Path(target).touch(), x)[1], name="touch"
    )


def _saved(model: keras.Model, path: Path) -> Path:
    model.save(path)
    return path


def test_a_lambda_layer_is_refused_before_its_function_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    inputs = keras.Input((2,))
    path = _saved(keras.Model(inputs, _touching(marker)(inputs)), tmp_path / "lambda.keras")
    marker.unlink()  # building the model above ran it, as it should
    keras.saving.load_model(path, safe_mode=False)  # the payload is live: unsafe loading runs it
    assert marker.exists()
    marker.unlink()

    with pytest.raises(ValueError, match=r"Lambda.*safe_mode"):
        load_model(path)
    assert not marker.exists()


def _rewrite_config(path: Path, edit: Any) -> Path:
    """Copy the `.keras` zip at `path` with its `config.json` passed through `edit`."""
    target = path.with_name("edited.keras")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "config.json":
                data = json.dumps(edit(json.loads(data))).encode()
            out.writestr(item, data)
    return target


def test_a_config_naming_a_function_outside_keras_is_refused(tmp_path: Path) -> None:
    inputs = keras.Input((2,))
    path = _saved(keras.Model(inputs, keras.layers.Dense(1)(inputs)), tmp_path / "dense.keras")

    def system_activation(config: dict[str, Any]) -> dict[str, Any]:
        dense = next(
            layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense"
        )
        dense["config"]["activation"] = {
            "module": "os",
            "class_name": "function",
            "config": "system",
            "registered_name": "system",
        }
        return config

    with pytest.raises(TypeError, match=r"Could not locate function 'system'"):
        load_model(_rewrite_config(path, system_activation))
