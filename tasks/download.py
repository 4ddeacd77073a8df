"""Download tasks: thin adapters over `lib.core.fetch`, with no Prefect retries of their own.

`lib.core.fetch` already retries what HTTP calls transient (status codes, Retry-After, resuming)
within one deadline per file; task retries on top would multiply its attempts (3 task runs x
4 requests = 12 asks of one URL) and push an offline failure from seconds to minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import task
from prefect.context import TaskRunContext
from prefect.logging import get_run_logger

from lib.core.fetch import fetch, fetch_source, fetched_from, local_source
from lib.core.hashing import sha256_file
from lib.core.refs import FileRef
from lib.core.remote import RemoteFile
from lib.core.settings import load_settings
from lib.core.sources import check_source_allowed
from lib.core.table_files import MAX_FILE_BYTES
from tasks.caching import ContentCache
from tasks.result_storage import RECORDS
from tasks.results import RESULT_SERIALIZER
from tasks.storage import current_store


@task(
    task_run_name="download-{remote.name}",
    cache_policy=ContentCache(entry="lib.core.fetch"),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def download(remote: RemoteFile) -> FileRef:
    """Fetch a pinned file (mirrors first) into the raw folder and the store, checksum verified."""
    settings = load_settings()
    path = fetch(remote, settings.raw_dir, settings.mirrors)
    get_run_logger().info("%s ready at %s", remote.name, path)
    sha256 = current_store().put(path, remote.sha256)
    return FileRef(path=str(path), sha256=sha256, origin=remote.name)


def fetched_by(ref: FileRef) -> str:
    """What provided a downloaded file's bytes, for reports: a mirror's path, or the URL.

    With a mirror set that is the mirror, not the published URL; a file already in the raw
    store is named as kept there when where it came from was never recorded.
    """
    return fetched_from(Path(ref.path)) or f"{ref.path} (kept from an earlier download)"


@dataclass
class LocalSourceCache(ContentCache):
    """`ContentCache` over the bytes of a local source, so an edit at the same path re-runs.

    An http(s) source is never cached: only fetching it tells whether it changed.
    """

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        try:
            path = local_source(inputs["source"])
        except ValueError:
            return None  # the task itself reports the bad source
        if path is None or not path.is_file():
            return None
        content = {**inputs, "sha256": sha256_file(path)}
        return super().compute_key(task_ctx, content, flow_parameters, **kwargs)


def admit_source(source: str) -> None:
    """Refuse a local `source` outside ``TRAINFLOW_SOURCE_ROOTS`` in a run from a deployment.

    Call it from the flow before `ingest_source`: that task's cache key reads the file, and a
    cached answer would skip any check inside the task. A run the CLI (or a script) started
    has no deployment and reads what its user can; a subflow of a deployment's run inherits
    the deployment's id, so `retrain-all` is held to the same rule.

    Raises:
        SourceNotAllowedError: a local path outside the roots, in a deployment's run.
    """
    from prefect.runtime import deployment

    if deployment.id is not None:
        check_source_allowed(source, load_settings().source_roots)


@task(
    task_run_name="ingest-{source}",
    cache_policy=LocalSourceCache(entry="lib.core.fetch"),
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
    result_storage=RECORDS,
)
def ingest_source(source: str) -> FileRef:
    """Copy a user's own file (path or URL) into the raw store, keyed by its content.

    The source is a workbook, so nothing larger than the reader accepts is downloaded.
    """
    path, sha256 = fetch_source(source, load_settings().raw_dir, max_bytes=MAX_FILE_BYTES)
    get_run_logger().info("%s ingested as %s (sha256 %s)", source, path, sha256)
    current_store().put(path, sha256)
    return FileRef(path=str(path), sha256=sha256, origin=source)
