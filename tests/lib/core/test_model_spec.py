"""ModelSpec.model_code: the models-from-code file of each domain, found without running it."""

from __future__ import annotations

import dataclasses

import pytest

from lib.core.model_spec import ModelSpec
from lib.energy.spec import SPEC as ENERGY
from lib.siamese.spec import SPEC as SIAMESE


@pytest.mark.parametrize("spec", [ENERGY, SIAMESE], ids=["energy", "siamese"])
def test_model_code_is_the_domains_set_model_file(spec: ModelSpec) -> None:
    path = spec.model_code()
    assert path.is_file() and path.parent.name == spec.pipeline
    assert "set_model(" in path.read_text()


@pytest.mark.parametrize("module", ["lib.energy.nowhere", "lib.energy"])
def test_a_python_model_without_a_module_file_is_named(module: str) -> None:
    with pytest.raises(ValueError, match=rf"module with a \.py file. .*{module}"):
        dataclasses.replace(ENERGY, python_model=module).model_code()
