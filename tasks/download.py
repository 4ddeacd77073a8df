"""Download tasks: the only tasks that retry, because only I/O fails transiently."""

from __future__ import annotations

from typing import Any

from prefect import Task, task
from prefect.client.schemas.objects import TaskRun
from prefect.logging import get_run_logger
from prefect.states import State

from lib.datasets import RemoteFile
from lib.fetch import ChecksumMismatchError, fetch, fetch_source
from lib.refs import FileRef
from lib.settings import load_settings
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
    cache_policy=ContentCache(modules=("lib.fetch", "lib.datasets")),
    persist_result=True,
)
def download(remote: RemoteFile) -> FileRef:
    """Fetch a pinned file (mirrors first) into the raw store, checksum verified."""
    settings = load_settings()
    path = fetch(remote, settings.raw_dir, settings.mirrors)
    get_run_logger().info("%s ready at %s", remote.name, path)
    return FileRef(path=str(path), sha256=remote.sha256 or FileRef.of(path).sha256)


@task(
    task_run_name="ingest-{source}",
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAYS,
    retry_condition_fn=_transient,
)
def ingest_source(source: str) -> FileRef:
    """Copy a user's own file (path or URL) into the raw store; hashed anew on every run."""
    path, sha256 = fetch_source(source, load_settings().raw_dir)
    get_run_logger().info("%s ingested as %s (sha256 %s)", source, path, sha256)
    return FileRef(path=str(path), sha256=sha256)
