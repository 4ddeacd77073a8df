"""Temp-then-rename writes: whole files or none, and no temporary left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.core.atomic import atomic_path


class Crash(RuntimeError):
    """Stands in for a writer that dies half-way."""


def _names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_atomic_path_renames_onto_the_target_on_success(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "table.parquet"
    with atomic_path(target) as temporary:
        assert not target.exists()
        temporary.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert _names(target.parent) == ["table.parquet"]


def test_atomic_path_replaces_an_existing_target(tmp_path: Path) -> None:
    target = tmp_path / "model.keras"
    target.write_bytes(b"old")
    with atomic_path(target) as temporary:
        temporary.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert _names(tmp_path) == ["model.keras"]


def test_atomic_path_leaves_the_target_untouched_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "model.keras"
    target.write_bytes(b"old")
    with pytest.raises(Crash, match="half-way"), atomic_path(target) as temporary:
        temporary.write_bytes(b"partial")
        raise Crash("died half-way")
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["model.keras"]


def test_atomic_path_creates_nothing_when_the_first_write_fails(tmp_path: Path) -> None:
    target = tmp_path / "history.json"
    with pytest.raises(Crash), atomic_path(target):
        raise Crash
    assert _names(tmp_path) == []


def test_atomic_path_temporary_sits_beside_the_target_with_its_suffix_last(tmp_path: Path) -> None:
    target = tmp_path / "model.keras"
    with atomic_path(target) as temporary:
        assert temporary.parent == target.parent  # same file system: the rename is atomic
        assert temporary.suffix == ".keras"
        assert temporary.name.startswith(".model.")  # hidden, and says whose it is
        assert temporary != target
        temporary.write_bytes(b"x")


def test_atomic_path_temporaries_of_concurrent_writers_differ(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second
        first.write_bytes(b"one")
        second.write_bytes(b"two")
    # The outer writer finishes last, so its content wins; each is whole either way.
    assert target.read_bytes() == b"one"
    assert _names(tmp_path) == ["out.png"]
