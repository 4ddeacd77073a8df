"""Start-up housekeeping of the state directory: what killed processes left behind.

A process killed between creating a temporary and renaming it (`lib.core.atomic`), a
download interrupted for good (`lib.core.fetch`'s ``.partial`` files, kept to resume), or a
checkpoint folder of a fit nobody resumes stay forever unless someone removes them. A file
untouched for `STALE_SECONDS` belongs to no live writer: every writer touches its file far
more often than that.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

STALE_SECONDS = 24 * 3600
"""Age (since the last change) after which a leftover is removed: a day."""
TEMPORARY_PATTERNS = (".*.tmp*", "*.part", ".partial/*")
"""Names `lib.core.atomic` and `lib.core.fetch` give files that are not finished yet (a
download kept in ``raw/.partial`` to resume, once a day old, belongs to no live run)."""
TEMPORARY_FOLDERS = ("*.backup", "tmp*")
"""Checkpoint folders of fits (`lib.core.training`) and scratch folders of evaluations."""


def stale_leftovers(home: Path, now: float | None = None) -> Iterator[Path]:
    """Temporaries under `home` not changed for `STALE_SECONDS`."""
    cutoff = (time.time() if now is None else now) - STALE_SECONDS
    seen: set[Path] = set()
    for pattern in (*TEMPORARY_PATTERNS, *TEMPORARY_FOLDERS):
        for path in home.rglob(pattern):
            if path in seen or not _older_than(path, cutoff):
                continue
            seen.add(path)
            yield path


def remove_stale_leftovers(home: Path, now: float | None = None) -> list[Path]:
    """Remove what `stale_leftovers` finds; return what was removed.

    Never fails a run: a leftover that vanished meanwhile, or cannot be removed, is skipped.
    """
    if not home.is_dir():
        return []
    removed = []
    for path in list(stale_leftovers(home, now)):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def _older_than(path: Path, cutoff: float) -> bool:
    """Whether `path` (a folder: anything in it) was last changed before `cutoff`."""
    try:
        if path.is_file() or path.is_symlink():
            return path.lstat().st_mtime < cutoff
        newest = max(
            (entry.stat().st_mtime for entry in path.rglob("*") if entry.is_file()),
            default=path.stat().st_mtime,
        )
    except OSError:
        return False
    return newest < cutoff and os.access(path, os.W_OK)
