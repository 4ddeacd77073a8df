"""Prefect's result and cache records, kept in the artifact store beside the files they name.

ARCHITECTURE.md, "The store". Every persisted task sets ``result_storage=RECORDS``: the slug
of a `StoreRecords` block, since Prefect takes a block in a decorator only once the API holds
it. `prepare_store` saves it; each flow calls it first (one write to the API; a Dask
worker loads the block from the same API). The block holds no settings: each read and write
asks `tasks.storage.current_store()`, so each process (a CLI run, a Dask worker on another
machine) writes where its own ``TRAINFLOW_STORE`` points. Two machines with their own homes
and one store therefore share records: a step cached on one is a cache hit on the other.

Records are keyed by the bare cache key (`_resolve_path` names no local path); a record is
written in one piece (one PUT, or temp-then-rename in a folder), never seen half-written.
"""

from __future__ import annotations

import asyncio

from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.filesystems import WritableFileSystem

from tasks.storage import current_store


def _read(key: str) -> bytes:
    content = current_store().read_record(key)
    if content is None:
        raise FileNotFoundError(f"no result record {key} in the store")
    return content


def _write(key: str, content: bytes) -> str:
    current_store().write_record(key, content)
    return key


class StoreRecords(WritableFileSystem):
    """A Prefect storage block over the records of `TRAINFLOW_STORE` (see the module)."""

    _block_type_name = "Trainflow Store Records"

    def _resolve_path(self, path: str) -> None:
        """No local path: Prefect then stores and finds records under their bare key."""
        return None

    async def aread_path(self, path: str) -> bytes:
        return await asyncio.to_thread(_read, path)

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:  # type: ignore[override]
        return _read(path)

    async def awrite_path(self, path: str, content: bytes) -> str:
        return await asyncio.to_thread(_write, path, content)

    @async_dispatch(awrite_path)
    def write_path(self, path: str, content: bytes) -> str:  # type: ignore[override]
        return _write(path, content)


RECORDS_BLOCK = "store"
RECORDS = f"{StoreRecords.get_block_type_slug()}/{RECORDS_BLOCK}"
"""The `result_storage` of every persisted task: the saved `StoreRecords` block."""


def prepare_store() -> None:
    """Check the store answers; save the `StoreRecords` block, so that `RECORDS` resolves.

    Call it before any persisted task runs (each flow does first). A store that cannot be
    reached, or refuses the credentials, ends the run here with one line, before any step
    (a cache key that cannot be read would otherwise fail inside Prefect's own machinery).
    Saving is idempotent, and the block holds no settings, so every process may save it.

    Raises:
        StoreError: see `lib.core.store.Store.check`.
    """
    current_store().check()
    StoreRecords().save(RECORDS_BLOCK, overwrite=True, _sync=True)  # type: ignore[call-arg]
