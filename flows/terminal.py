"""What `trainflow run --quiet` and `--json` change on the terminal while pipelines run.

Both leave the run's record alone: Prefect's API log handler still receives every line, so
the Prefect UI shows the same log whatever the terminal showed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

STDOUT_FD, STDERR_FD = 1, 2


def console_for(*, quiet: bool, json: bool) -> contextlib.AbstractContextManager[None]:
    """What the terminal gets while the pipelines run: everything; nothing (`quiet`: the
    summary and errors come after); or everything on stderr (`json`: the document after)."""
    if quiet:
        return quiet_console()
    if json:
        return stdout_on_stderr()
    return contextlib.nullcontext()


class _Silenced(logging.Filter):
    """Lets nothing through; unlike a handler's level, Prefect's logging set-up keeps it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextlib.contextmanager
def quiet_console() -> Iterator[None]:
    """Keep Prefect's log lines, the training bar and MLflow's chatter off the terminal.

    Prefect prints through one console handler on the root logger; a filter on it silences
    the lines and, with them, the bar (`tasks.progress_bar` draws only where that handler
    shows INFO). Prefect sets its logging up when `prefect.main` is first imported, and
    again (levels only) on a later import, hence the import first and a filter, not a
    level; the filter stays for the rest of the process, as the temporary API server says
    it stops at exit. MLflow writes its warnings and "Created version ..." to whatever
    `sys.stderr` is at the time (and switches its own off-switch back on as it likes), so
    `sys.stderr` is a sink meanwhile; a tracking server's "View run" links on stdout are
    turned off.
    """
    import prefect.main  # noqa: F401  (sets up Prefect's logging: its handlers exist after)
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.addFilter(_Silenced())
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        yield


@contextlib.contextmanager
def stdout_on_stderr() -> Iterator[None]:
    """Send everything written to stdout meanwhile to stderr, at the file-descriptor level.

    `--json` promises one JSON document on stdout. Libraries print there on their own (an
    MLflow tracking server's "View run" links, native code), so rather than hunt them down,
    descriptor 1 points at stderr while the pipelines run; the document is written after.
    """
    sys.stdout.flush()
    saved = os.dup(STDOUT_FD)
    os.dup2(STDERR_FD, STDOUT_FD)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, STDOUT_FD)
        os.close(saved)
