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

    The temporary file lives in the same directory so the final `os.replace` is atomic; the
    file and then the directory are fsynced, so the rename is durable too. On any exception
    the temporary is removed and `target` is left as it was. A temporary left by a killed
    process (named ``.<stem>.*.tmp<suffix>``) is removed by `lib.core.hygiene` a day later.
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
        fsync_directory(target.parent)
    finally:
        temporary.unlink(missing_ok=True)


def fsync_directory(folder: Path) -> None:
    """Make a rename in `folder` durable: the new name survives a power cut, not just a crash.

    A no-op where directories cannot be opened for fsync (Windows).
    """
    try:
        handle = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename itself stands
    finally:
        os.close(handle)
