"""Stored task results: JSON in, the task's own descriptor out, anything else refused unread."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from prefect import Task
from prefect.results import ResultRecord, ResultRecordMetadata
from prefect.serializers import JSONSerializer

import tasks
from lib.core.refs import FileRef
from tasks.caching import ContentCache
from tasks.descriptors import SplitRef, TableRef
from tasks.results import RESULT_SERIALIZER, UntrustedResult, read_result, result_type
from tests.fixtures.tampering import forged_result_records

REF = FileRef(path="/data/table.parquet", sha256="a" * 64)
TABLE = TableRef(table=REF, source=REF, rows=3)


def _written(value: Any) -> bytes:
    """`value` stored as Prefect stores a persisted result."""
    metadata = ResultRecordMetadata(serializer=JSONSerializer())
    return ResultRecord(metadata=metadata, result=value).serialize()


def _decoded_with(**serializer: str) -> bytes:
    """A stored TABLE whose record tells Prefect to decode it with other serializer settings."""
    record = json.loads(_written(TABLE))
    record["metadata"]["serializer"].update(serializer)
    return json.dumps(record).encode()


def test_a_record_prefect_wrote_reads_back_as_the_descriptor() -> None:
    assert read_result(_written(TABLE), TableRef) == TABLE
    assert read_result(_written(None), TableRef) is None  # an expired placeholder


def test_the_trusted_serializer_is_the_one_tasks_use() -> None:
    stored = json.loads(_written(TABLE))
    assert stored["metadata"]["serializer"]["type"] == RESULT_SERIALIZER


@pytest.mark.parametrize("forgery", ["raw pickle", "pickle record", "import record", "nested"])
def test_forged_records_are_refused_without_running_them(tmp_path: Path, forgery: str) -> None:
    marker = tmp_path / "ran"
    content = forged_result_records(tmp_path, "tasks.descriptors.TableRef")[forgery](marker)
    with pytest.raises(UntrustedResult):
        read_result(content, TableRef)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (_decoded_with(object_decoder="os.system"), "another serializer"),
        (_decoded_with(jsonlib="pickle"), "another serializer"),
        (_written(TABLE), r"Expected a tasks.descriptors.SplitRef. Received: '.*TableRef'"),
        (_written([1, 2]), r"Expected a tasks.descriptors.SplitRef record. Received: \[1, 2\]"),
        (_written({"__class__": "tasks.descriptors.SplitRef", "data": {}}), "not a valid"),
        (b"\x80\x04K\x01.", "not a JSON result record"),
        (b'{"metadata": {}}', r"not a JSON result record \(KeyError\)"),
    ],
)
def test_anything_but_the_expected_descriptor_is_named_and_refused(
    content: bytes, match: str
) -> None:
    with pytest.raises(UntrustedResult, match=match):
        read_result(content, SplitRef)


def test_result_type_comes_from_the_return_annotation() -> None:
    def returns_a_table() -> TableRef:
        return TABLE

    def returns_a_pair() -> tuple[FileRef, FileRef]:
        return REF, REF

    assert result_type(returns_a_table) is TableRef
    with pytest.raises(TypeError, match=r"Received: .*returns_a_pair -> tuple"):
        result_type(returns_a_pair)


def _tasks() -> list[Task[Any, Any]]:
    modules = [
        importlib.import_module(f"tasks.{info.name}")
        for info in pkgutil.iter_modules(tasks.__path__)
    ]
    return [
        value for module in modules for value in vars(module).values() if isinstance(value, Task)
    ]


def test_every_persisted_task_stores_json_descriptors_behind_a_content_cache() -> None:
    persisted = [task for task in _tasks() if task.persist_result]
    assert {task.name for task in persisted} >= {"download", "train", "evaluate_champion"}
    for task in persisted:
        assert task.result_serializer == RESULT_SERIALIZER, task.name
        assert isinstance(task.cache_policy, ContentCache), task.name
        result_type(task.fn)  # a descriptor, so the cache can read it back as one
