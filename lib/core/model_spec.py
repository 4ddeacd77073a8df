"""What the pipeline, the registry and `predict` need to know about one registered model.

Adding a model means writing one `ModelSpec` (beside its domain's constants) and one flow;
the registry tasks, the report and the CLI read everything else from here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
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
        python_model: the module whose file MLflow logs as the model's code ("models from
            code", e.g. ``"lib.energy.pyfunc_model"``): its copy in each version builds the
            pyfunc wrapper, so no pickled wrapper is stored. Located, never imported, here.
        presets: named training recipes; ``"default"`` is what a plain run trains.
        scorer: ``"module:function"`` scoring a registered pyfunc on a candidate's test data,
            ``scorer(pyfunc, *test_files) -> metrics``; imported only when a champion is scored.
        serving_signature: ``"module:function"`` returning the MLflow signature and input
            example registered with each version, ``function() -> (signature, example)``;
            imported only when a version is registered.
        model_config: metrics of the evaluation that the pyfunc reads from its
            `model_config` (e.g. the calibrated threshold), by model_config key.
        version_tags: metrics of the evaluation also set as tags on the model version,
            by tag name, for whoever reads the registry without loading the model.
        description: what the model predicts from what (inputs, outputs): the registered
            model's description in MLflow, for whoever finds it there first.
    """

    pipeline: str
    name: str
    gate: GatePolicy
    python_model: str
    presets: Mapping[str, BaseModel]
    scorer: str
    serving_signature: str
    model_config: Mapping[str, str] = field(default_factory=dict)
    version_tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def model_code(self) -> Path:
        """The file of `python_model`, found without running it (running it sets the model)."""
        found = importlib.util.find_spec(self.python_model)
        origin = found.origin if found is not None else None
        is_package = found is not None and found.submodule_search_locations is not None
        if origin is None or is_package or not origin.endswith(".py"):
            raise ValueError(
                f"Expected python_model to name a module with a .py file. "
                f"Received: python_model={self.python_model!r}"
            )
        return Path(origin)

    def recipe(self, preset: str, epochs: int | None = None) -> Any:
        """The recipe of `preset`, with its epoch count overridden when `epochs` is given."""
        recipe = self.presets[preset]
        return recipe if epochs is None else recipe.model_copy(update={"epochs": epochs})
