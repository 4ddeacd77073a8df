"""What the pipeline, the registry and `predict` need to know about one registered model.

Adding a model means writing one `ModelSpec` (beside its domain's constants) and one flow;
the registry tasks, the report and the CLI read everything else from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from lib.core.gate import GatePolicy


@dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    Attributes:
        pipeline: short name: the MLflow experiment, artifact keys, CLI word.
        name: the registered model's name in MLflow.
        gate: how a candidate is judged against the champion.
        python_model: ``"module:Class"`` of the MLflow pyfunc wrapper, imported only when a
            model is registered (it imports MLflow).
        presets: named training recipes; ``"default"`` is what a plain run trains.
        scorer: ``"module:function"`` scoring a registered pyfunc on a candidate's test data,
            ``scorer(pyfunc, *test_files) -> metrics``; imported only when a champion is scored.
        model_config: metrics of the evaluation that the pyfunc reads from its
            `model_config` (e.g. the calibrated threshold), by model_config key.
        version_tags: metrics of the evaluation also set as tags on the model version,
            by tag name, for whoever reads the registry without loading the model.
    """

    pipeline: str
    name: str
    gate: GatePolicy
    python_model: str
    presets: Mapping[str, BaseModel]
    scorer: str
    model_config: Mapping[str, str] = field(default_factory=dict)
    version_tags: Mapping[str, str] = field(default_factory=dict)

    def make_python_model(self) -> Any:
        """A fresh instance of the pyfunc wrapper that serves this model."""
        module, _, name = self.python_model.partition(":")
        return getattr(importlib.import_module(module), name)()

    def recipe(self, preset: str, epochs: int | None = None) -> Any:
        """The recipe of `preset`, with its epoch count overridden when `epochs` is given."""
        recipe = self.presets[preset]
        return recipe if epochs is None else recipe.model_copy(update={"epochs": epochs})
