"""Output folders: named by what determines their content, under the state directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.storage import KEY_CHARS, output_dir


def test_the_same_identity_maps_to_the_same_folder(trainflow_home: Path) -> None:
    first = output_dir("models/energy", "abc", "seed0", entry="lib.energy.train")
    assert first == output_dir("models/energy", "abc", "seed0", entry="lib.energy.train")
    assert first.parent == trainflow_home.resolve() / "models" / "energy"
    assert len(first.name) == KEY_CHARS


@pytest.mark.parametrize(
    ("identity", "entry"),
    [(("abc", "seed1"), "lib.energy.train"), (("abc", "seed0"), "lib.energy.evaluate")],
    ids=["another input", "another step's code"],
)
def test_another_input_or_code_maps_elsewhere(
    trainflow_home: Path, identity: tuple[str, ...], entry: str
) -> None:
    base = output_dir("models/energy", "abc", "seed0", entry="lib.energy.train")
    assert output_dir("models/energy", *identity, entry=entry) != base


def test_nothing_is_created_until_a_writer_writes(trainflow_home: Path) -> None:
    folder = output_dir("reports/energy", "abc")
    assert not folder.exists()
