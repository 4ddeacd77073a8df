"""Expected failures end a run with their message alone; unexpected ones keep their traceback.

An `ExpectedError` (a bad workbook, a checksum mismatch, a source that is not there) is
fully explained by its message, so nothing Prefect prints about it carries a traceback:

- Prefect logs a failing task twice: "Task run failed with exception: ..." with the traceback,
  then "Finished in state Failed('Task run encountered an exception ...: <message>')". A filter
  on Prefect's run loggers drops the first record for expected errors (on the terminal and in
  the API alike); the second still says why.
- A flow whose body is `run_cleanly` returns ``Failed(message=<message>)`` instead of raising,
  so Prefect logs no "Encountered exception during execution" traceback and the UI shows the
  message itself as the run's state message. The error travels as the state's data:
  ``state.result()`` raises it as before, which is how the CLI prints it, once.

With ``TRAINFLOW_VERBOSE`` set (``trainflow -v``) both step aside and every failure keeps its
traceback. The filter is installed at the start of each such flow run rather than at import:
a deployment's run is a process `trainflow` never started.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from prefect.states import Failed, State

from lib.core.errors import ExpectedError
from lib.core.settings import load_settings

P = ParamSpec("P")
R = TypeVar("R")

RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")


class HideExpectedTracebacks(logging.Filter):
    """Drop a run logger's record that carries an expected error (and so its traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, ExpectedError) or load_settings().verbose


def hide_expected_tracebacks() -> None:
    """Install `HideExpectedTracebacks` on Prefect's run loggers once per process."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(known, HideExpectedTracebacks) for known in logger.filters):
            logger.addFilter(HideExpectedTracebacks())


def run_cleanly(steps: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a flow's steps; an expected error ends the flow run `Failed` with its message.

    Call it as the flow's body, ``return run_cleanly(_steps, params)``: the flow function
    itself stays the plain function Prefect inspects (parameter schema, source file, version).
    Callers of the flow still get its value or the error: Prefect makes a returned state the
    run's final state, and that state's `result()` raises the error it carries.
    """
    hide_expected_tracebacks()
    try:
        return steps(*args, **kwargs)
    except ExpectedError as error:
        if load_settings().verbose:
            raise
        failed: State = Failed(message=str(error), data=error)
        return failed  # type: ignore[return-value]  # Prefect's convention, see above
