"""Download tasks: the only tasks that retry, because only I/O fails transiently."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect import Task, task
from prefect.client.schemas.objects import TaskRun
from prefect.context import TaskRunContext
from prefect.logging import get_run_logger
from prefect.states import State

from lib.core.fetch import ChecksumMismatchError, fetch, fetch_source, local_source
from lib.core.hashing import sha256_file
from lib.core.refs import FileRef
from lib.core.remote import RemoteFile
from lib.core.settings import load_settings
from tasks.caching import ContentCache

IO_RETRIES = 2
IO_RETRY_DELAYS: list[float] = [5.0, 30.0]


def _transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry what a second try can fix; wrong bytes or a missing file it cannot."""
    try:
        state.result()
    except (ChecksumMismatchError, FileNotFoundError, ValueError):
        return False
    except Exception:
        return True
    return True


@task(
    task_run_name="download-{remote.name}",
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAYS,
    retry_condition_fn=_transient,
    cache_policy=ContentCache(entry="lib.core.fetch"),
    persist_result=True,
)
def download(remote: RemoteFile) -> FileRef:
    """Fetch a pinned file (mirrors first) into the raw store, checksum verified."""
    settings = load_settings()
    path = fetch(remote, settings.raw_dir, settings.mirrors)
    get_run_logger().info("%s ready at %s", remote.name, path)
    return FileRef(path=str(path), sha256=remote.sha256 or FileRef.of(path).sha256)


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


@task(
    task_run_name="ingest-{source}",
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAYS,
    retry_condition_fn=_transient,
    cache_policy=LocalSourceCache(entry="lib.core.fetch"),
    persist_result=True,
)
def ingest_source(source: str) -> FileRef:
    """Copy a user's own file (path or URL) into the raw store, keyed by its content."""
    path, sha256 = fetch_source(source, load_settings().raw_dir)
    get_run_logger().info("%s ingested as %s (sha256 %s)", source, path, sha256)
    return FileRef(path=str(path), sha256=sha256)
