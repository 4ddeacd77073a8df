"""ContentCache: keys from descriptors + parameters + lib code; dead entries recompute."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import flow, task

from lib.core.refs import FileRef
from tasks.caching import ContentCache, file_refs

pytestmark = pytest.mark.usefixtures("prefect_api")

CALLS: list[str] = []


@task(cache_policy=ContentCache(entry="lib.energy.splits"), persist_result=True)
def shout(source: FileRef, suffix: str, out_dir: str) -> FileRef:
    CALLS.append(suffix)
    target = Path(out_dir) / f"{source.sha256[:8]}-{suffix}.txt"
    target.write_text(Path(source.path).read_text().upper() + suffix)
    return FileRef.of(target)


@flow
def shout_flow(source: FileRef, suffix: str, out_dir: str) -> tuple[FileRef, str]:
    state = shout(source, suffix, out_dir, return_state=True)
    return state.result(), state.name


@pytest.fixture
def source(tmp_path: Path) -> FileRef:
    path = tmp_path / "in.txt"
    path.write_text(f"hello {tmp_path.name}")
    return FileRef.of(path)


def test_same_inputs_hit_the_cache(source: FileRef, tmp_path: Path) -> None:
    CALLS.clear()
    first, first_state = shout_flow(source, "!", str(tmp_path))
    second, second_state = shout_flow(source, "!", str(tmp_path))
    assert (first_state, second_state) == ("Completed", "Cached")
    assert first == second and CALLS == ["!"]


def test_changed_parameter_or_content_recomputes(source: FileRef, tmp_path: Path) -> None:
    CALLS.clear()
    shout_flow(source, "!", str(tmp_path))
    _, other_parameter = shout_flow(source, "?", str(tmp_path))
    Path(source.path).write_text("changed")
    _, other_content = shout_flow(FileRef.of(Path(source.path)), "!", str(tmp_path))
    assert (other_parameter, other_content) == ("Completed", "Completed")
    assert CALLS == ["!", "?", "!"]


def test_entry_whose_file_was_deleted_recomputes(source: FileRef, tmp_path: Path) -> None:
    CALLS.clear()
    output, _ = shout_flow(source, "!", str(tmp_path))
    Path(output.path).unlink()
    again, state = shout_flow(source, "!", str(tmp_path))
    assert state == "Completed" and CALLS == ["!", "!"]
    assert again.exists()
    _, cached = shout_flow(source, "!", str(tmp_path))
    assert cached == "Cached"


def test_changed_lib_code_changes_the_key(
    source: FileRef, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    CALLS.clear()
    shout_flow(source, "!", str(tmp_path))
    monkeypatch.setattr("tasks.caching.code_version", lambda entries: "edited")
    _, state = shout_flow(source, "!", str(tmp_path))
    assert state == "Completed" and CALLS == ["!", "!"]


def test_another_state_directory_recomputes(
    source: FileRef, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    CALLS.clear()
    shout_flow(source, "!", str(tmp_path))
    monkeypatch.setenv("TRAINFLOW_HOME", str(tmp_path / "another-home"))
    _, state = shout_flow(source, "!", str(tmp_path))
    assert state == "Completed" and CALLS == ["!", "!"]


def test_file_refs_finds_nested_descriptors() -> None:
    one = FileRef(path="/a", sha256="1")
    two = FileRef(path="/b", sha256="2")
    assert list(file_refs({"x": (one, [two])})) == [one, two]
