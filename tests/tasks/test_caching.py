"""ContentCache: keys from descriptors + parameters + lib code; dead or forged entries recompute."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from prefect import flow, task
from prefect.results import ResultRecord
from prefect.serializers import PickleSerializer

from lib.core.refs import FileRef
from lib.core.settings import load_settings
from tasks.caching import ContentCache, file_refs
from tasks.result_storage import RECORDS
from tasks.results import RESULT_SERIALIZER
from tests.fixtures.tampering import forged_result_records

pytestmark = pytest.mark.usefixtures("prefect_api")

CALLS: list[str] = []


@task(
    cache_policy=ContentCache(entry="lib.energy.splits"),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def shout(source: FileRef, suffix: str, out_dir: str) -> FileRef:
    CALLS.append(suffix)
    target = Path(out_dir) / f"{source.sha256[:8]}-{suffix}.txt"
    target.write_text(Path(source.path).read_text().upper() + suffix)
    return FileRef.of(target)


@flow
def shout_flow(source: FileRef, suffix: str, out_dir: str) -> tuple[FileRef, str]:
    state = shout(source, suffix, out_dir, return_state=True)
    return state.result(), state.name


@flow
def shout_stored(source: FileRef, suffix: str, out_dir: str) -> tuple[str, Path]:
    """The task's state name and the file its result record is stored in (a folder store)."""
    state = shout(source, suffix, out_dir, return_state=True)
    return state.name, Path(load_settings().store, "records", state.data.metadata.storage_key)


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


def test_entry_whose_file_was_edited_in_place_recomputes(source: FileRef, tmp_path: Path) -> None:
    CALLS.clear()
    output, _ = shout_flow(source, "!", str(tmp_path))
    Path(output.path).write_text("edited")  # no longer the bytes the entry describes
    again, state = shout_flow(source, "!", str(tmp_path))
    assert state == "Completed" and CALLS == ["!", "!"]
    assert again == output and Path(again.path).read_text().endswith("!")


def test_a_result_is_stored_as_json_and_read_back_as_its_descriptor(
    source: FileRef, tmp_path: Path
) -> None:
    first, stored = shout_stored(source, "!", str(tmp_path))
    again, cached = shout_flow(source, "!", str(tmp_path))
    assert (first, cached) == ("Completed", "Cached")
    assert isinstance(again, FileRef) and again.exists()
    record = json.loads(stored.read_bytes())
    assert record["metadata"]["serializer"]["type"] == "json"
    assert json.loads(record["result"])["__class__"] == "lib.core.refs.FileRef"


@pytest.mark.parametrize("forgery", ["raw pickle", "pickle record", "import record", "nested"])
def test_a_forged_entry_runs_nothing_and_recomputes(
    source: FileRef, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forgery: str
) -> None:
    CALLS.clear()
    monkeypatch.syspath_prepend(str(tmp_path))  # where an "import record" finds its module
    _, stored = shout_stored(source, "!", str(tmp_path))
    forged = forged_result_records(tmp_path, "lib.core.refs.FileRef")
    live, marker = forged[forgery](tmp_path / "control"), tmp_path / "ran"
    # The payload is live: Prefect's reader runs it (backup: the old default serializer).
    with contextlib.suppress(Exception):  # after running it, a forgery need not decode
        ResultRecord.deserialize(live, backup_serializer=PickleSerializer())
    assert (tmp_path / "control").exists()

    stored.write_bytes(forged[forgery](marker))
    state, _ = shout_stored(source, "!", str(tmp_path))

    assert not marker.exists()
    assert state == "Completed" and CALLS == ["!", "!"]
    assert shout_flow(source, "!", str(tmp_path))[1] == "Cached"  # overwritten with JSON


def test_a_task_that_would_pickle_its_result_is_not_cached(source: FileRef, tmp_path: Path) -> None:
    pickling = shout.with_options(result_serializer="pickle")

    @flow
    def pickling_flow() -> str:
        return pickling(source, "?", str(tmp_path), return_state=True).name

    assert (pickling_flow(), pickling_flow()) == ("Completed", "Completed")


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
