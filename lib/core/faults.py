"""Named fault points: where crash tests kill a real process, as a power cut or OOM would.

`TRAINFLOW_FAULT=<point>` makes the process SIGKILL itself when it reaches `<point>` (no
clean-up, no `finally`, no atexit), which is how the tests prove that every step survives
a kill at its worst moment. `TRAINFLOW_FAULT=error:<point>` raises `InjectedFault` there
instead: an error nobody expected, as a bug would raise. Unset, a fault point costs one
dictionary lookup.

Points: ``download`` (a partial file holds some bytes), ``parquet`` (a table written but not
renamed into place), ``split``, ``pairs``, ``epoch:<n>`` (after epoch n's checkpoint),
``evaluate`` (test predictions made, plots not written), ``registered`` (a version exists,
its decision is not recorded and the alias has not moved), ``upload`` (some of a file's
bytes sent to the artifact store, the object not yet complete).
"""

from __future__ import annotations

import os
import signal

FAULT_VARIABLE = "TRAINFLOW_FAULT"


class InjectedFault(RuntimeError):
    """The unexpected error `TRAINFLOW_FAULT=error:<point>` raises."""


def fault_point(name: str) -> None:
    """SIGKILL this process, or raise `InjectedFault`, if `TRAINFLOW_FAULT` names `name`."""
    fault = os.environ.get(FAULT_VARIABLE)
    if fault == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == f"error:{name}":
        raise InjectedFault(f"fault injected at {name}")
