"""Cache keys from content hashes, parameters and the code of the `lib` step a task calls.

ARCHITECTURE.md, "Cache keys". Prefect's INPUTS policy would hash whole objects and collide
across tasks; TASK_SOURCE misses edits in helper modules. Here a key is
sha256(task name, code version of the lib module the task calls and its import closure,
canonical JSON of the inputs), where inputs are small descriptors and parameters, and a file
counts by its sha256 alone, never by its path: a descriptor made on another machine names
a path there, and the same bytes are the same input. The records live in the artifact store
(`tasks.result_storage`), so every machine that shares a store shares its cache hits, and a
run against another store (another home, by default) starts with none.

A cache entry whose files are gone must recompute rather than hand out dead descriptors: the
policy reads the stored descriptor and, unless every file it names is on this machine or in
the store (`tasks.storage.available`), expires that entry so the task runs and overwrites
it. It reads it with `tasks.results.read_result` (plain JSON, the task's own return type)
before Prefect does: a record that is anything else, say a pickle planted in the result
storage, is expired the same way and never decoded by Prefect.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.logging import get_logger
from prefect.results import ResultStore
from pydantic import BaseModel

from lib.core.code_version import code_version
from lib.core.hashing import sha256_text
from lib.core.refs import FileRef
from tasks.result_storage import StoreRecords
from tasks.results import TRUSTED_SERIALIZER, UntrustedResult, read_result, result_type
from tasks.storage import available

LOGGER = get_logger(__name__)


def _canonical(value: Any) -> Any:
    if isinstance(value, FileRef):
        return {"sha256": value.sha256}
    if isinstance(value, BaseModel):
        return _canonical(value.model_dump(mode="json"))
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def file_refs(value: Any) -> Iterable[FileRef]:
    """Every FileRef inside a (nested) descriptor."""
    if isinstance(value, FileRef):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from file_refs(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from file_refs(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from file_refs(item)


@dataclass
class ContentCache(CachePolicy):
    """Key a task on its descriptor inputs, parameters and the code of the `entry` lib module.

    `entry` names the module whose function the task calls (a string, so that naming it does
    not import it); its import closure is what the key covers. The task must persist its
    result as JSON (`tasks.results.RESULT_SERIALIZER`) into the store
    (`result_storage=tasks.result_storage.RECORDS`); otherwise computing the key fails, and
    Prefect runs the task uncached, saying why in its log.
    """

    entry: str = ""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        key = sha256_text(
            task_ctx.task.name,
            code_version((self.entry,)),
            json.dumps(_canonical(inputs), sort_keys=True, default=str),
        )
        _expire_unusable_entry(task_ctx, key)
        return key


def _expire_unusable_entry(task_ctx: TaskRunContext, key: str) -> None:
    """Expire the entry at `key` unless it is a trusted descriptor whose files can be had."""
    store = task_ctx.result_store
    if store is None:
        return
    content = _stored_record(task_ctx, store, key)
    if content is None:
        return
    try:
        cached = read_result(content, result_type(task_ctx.task.fn))
    except UntrustedResult as error:
        LOGGER.warning("cache entry %s of %s discarded: %s", key, task_ctx.task.name, error)
        cached = None
    if cached is None or not all(available(ref) for ref in file_refs(cached)):
        long_ago = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        store.write(obj=None, key=key, expiration=long_ago)  # type: ignore[arg-type]


def _stored_record(task_ctx: TaskRunContext, store: ResultStore, key: str) -> bytes | None:
    """The raw bytes stored under `key`, or None if there is no entry."""
    if store.serializer.model_dump(mode="json") != TRUSTED_SERIALIZER:
        raise TypeError(
            f"Expected task {task_ctx.task.name!r} to persist its result as JSON "
            f"(result_serializer='json'). Received: {store.serializer.type!r}"
        )
    if store.metadata_storage is not None or not isinstance(store.result_storage, StoreRecords):
        raise TypeError(
            f"Expected task {task_ctx.task.name!r} to keep whole result records in the store "
            f"(result_storage=RECORDS, no key_storage). Received: {store.result_storage!r}"
        )
    # Called with `_sync=True`, as Prefect's ResultStore calls its (async-typed) storage blocks.
    read_path = cast(Callable[..., bytes], store.result_storage.read_path)
    try:
        return read_path(key, _sync=True)
    except OSError:  # no such record
        return None
