"""Keep TensorFlow's native start-up banner off the terminal, wherever TensorFlow is imported.

Importing TensorFlow 2.2x loads shared libraries whose C++ code logs through absl before
anything has called ``absl::InitializeLog()``; absl then writes every message to the process's
stderr and ignores ``TF_CPP_MIN_LOG_LEVEL`` (tried: 2 and 3; ``GLOG_minloglevel``,
``ABSL_MIN_LOG_LEVEL`` and ``ABSL_STDERRTHRESHOLD`` change nothing either):

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:... port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:... cudart_stub.cc:31] Could not find cuda drivers on your machine, ...

Only file descriptor 2 reaches them. `quiet_tensorflow_import` therefore installs an import
hook: the first ``import tensorflow`` (directly or through Keras, wherever in the process it
happens) runs with descriptor 2 pointed at a temporary file, and afterwards every captured
line that is not such a banner line is written back, so a real error still shows. What
TensorFlow logs after its import obeys ``TF_CPP_MIN_LOG_LEVEL`` (3 silences "failed call to
cuInit" on a machine without a GPU). TensorFlow itself is imported only where a model is
built or loaded; installing the hook imports nothing.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

PACKAGE = "tensorflow"
STDERR_FD = 2
# A line of C++ logging at INFO or WARNING level, "I0000 00:00:1795796573.247669   19647
# cudart_stub.cc:31] ...": severity, date, time (before absl is initialised, "00:00:" and the
# seconds since the epoch), thread, file:line.
NATIVE_NOTICE = re.compile(rb"^[IW]\d{4} [\d:.]+ +\d+ [\w.-]+:\d+\] ")
BANNER_LINES = (
    rb"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    # The continuation of cpu_feature_guard's "This TensorFlow binary is optimized ..." line.
    rb"To enable the following instructions:",
)

_lock = threading.Lock()


def is_banner(line: bytes) -> bool:
    """Whether a line is start-up chatter of TensorFlow's native code, not a message to keep."""
    return bool(NATIVE_NOTICE.match(line)) or line.lstrip().startswith(BANNER_LINES)


@contextlib.contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Capture file descriptor 2 (also what C++ code writes), then replay all but the banner.

    Other threads' stderr during the window is delayed, not lost: it is replayed too.
    """
    sys.stderr.flush()
    saved = os.dup(STDERR_FD)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), STDERR_FD)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, STDERR_FD)
            os.close(saved)
            capture.seek(0)
            kept = b"".join(line for line in capture if not is_banner(line))
            if kept:
                os.write(STDERR_FD, kept)


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of ``tensorflow/__init__.py`` inside `native_stderr_filtered`."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with native_stderr_filtered():
            self._loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, ...
        return getattr(self._loader, name)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as the other finders would and wraps its loader."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != PACKAGE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


def quiet_tensorflow_import() -> bool:
    """Make the process's first ``import tensorflow`` keep its native banner off stderr.

    Idempotent and cheap; imports nothing. Call it before anything may import TensorFlow.

    Returns:
        False when TensorFlow was already imported (too late: nothing to do), else True.
    """
    with _lock:
        if PACKAGE in sys.modules:
            return False
        if not any(isinstance(finder, _QuietFinder) for finder in sys.meta_path):
            sys.meta_path.insert(0, _QuietFinder())
        return True
