"""Temp-then-rename writes: a reader sees a whole file or none, even after a crash."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only on success.

    The temporary file lives in the same directory so the final `os.replace` is atomic; on
    any exception it is removed and `target` is left as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    # Keep the real suffix last: some writers (Keras' `.keras`) insist on it.
    fd, name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
