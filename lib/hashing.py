"""Content hashes: the identity of every file trainflow hands from one step to the next."""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterable
from pathlib import Path

CHUNK_BYTES = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so big files stay out of memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_text(*parts: str) -> str:
    """Hex sha256 of strings joined unambiguously (length-prefixed)."""
    digest = hashlib.sha256()
    for part in parts:
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


def code_version(module_names: Iterable[str]) -> str:
    """Hash of the source of the named modules (a package counts all its ``.py`` files).

    Cache keys include it so that an edit in a helper module re-runs the steps that use it,
    which Prefect's own TASK_SOURCE policy misses.
    """
    digest = hashlib.sha256()
    for name in sorted(set(module_names)):
        module = importlib.import_module(name)
        origin = Path(module.__file__ or "")
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for file in files:
            digest.update(str(file.relative_to(origin.parent)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]
