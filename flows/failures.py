"""Expected failures end a run with their message alone; unexpected ones keep their traceback.

An `ExpectedError` (a bad workbook, a checksum mismatch, a source that is not there) is
fully explained by its message, so nothing Prefect prints about it carries a traceback:

- Prefect logs a failing task twice: "Task run failed with exception: ..." with the traceback,
  then "Finished in state Failed('Task run encountered an exception ...: <message>')". A filter
  on Prefect's run loggers drops the first record for expected errors (on the terminal and in
  the API alike); the second still says why.
- A flow decorated with `ends_cleanly` returns ``Failed(message=<message>)`` instead of raising,
  so Prefect logs no "Encountered exception during execution" traceback and the UI shows the
  message itself as the run's state message. The error travels as the state's data:
  ``state.result()`` raises it as before, which is how the CLI prints it, once.

With ``TRAINFLOW_VERBOSE`` set (``trainflow -v``) both step aside and every failure keeps its
traceback. The filter is installed at the start of each decorated flow run rather than at
import: a deployment's run is a process `trainflow` never started.
"""

from __future__ import annotations

import functools
import inspect
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


def ends_cleanly(flow_function: Callable[P, R]) -> Callable[P, R]:
    """Make an expected error end the flow run `Failed` with its message, no traceback.

    Apply it under ``@flow``; the signature (the parameter schema) is kept. The flow's
    callers still get its value or the error: Prefect makes a returned state the run's final
    state, and its `result()` raises the error it carries.
    """

    @functools.wraps(flow_function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        hide_expected_tracebacks()
        try:
            return flow_function(*args, **kwargs)
        except ExpectedError as error:
            if load_settings().verbose:
                raise
            failed: State = Failed(message=str(error), data=error)
            return failed  # type: ignore[return-value]  # Prefect's convention, see above

    # Prefect builds the parameter model from the signature, resolving names in the module of
    # the function it holds (this one, not the flow's): hand it the types themselves.
    run.__signature__ = inspect.signature(flow_function, eval_str=True)  # type: ignore[attr-defined]
    return run
