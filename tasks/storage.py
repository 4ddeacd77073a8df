"""Where task outputs live: content-addressed folders under TRAINFLOW_HOME, and the store.

ARCHITECTURE.md, "The store". A task writes its outputs under its home (`output_dir`) and
describes each with `stored`, which also puts it into the artifact store; a task that reads a
descriptor opens `local_path(ref)`, which is the file itself when this machine has it, or a
copy fetched from the store by hash when the descriptor was made elsewhere.
"""

from __future__ import annotations

import functools
from pathlib import Path

from lib.core.code_version import code_version
from lib.core.hashing import sha256_text
from lib.core.refs import FileRef
from lib.core.settings import load_settings
from lib.core.store import Store, materialize, open_store, verified

KEY_CHARS = 16


def output_dir(stage: str, *identity: str, entry: str | None = None) -> Path:
    """Folder for one output, named by the hash of what determines its content.

    `identity` holds input hashes and parameters; `entry` the lib module that makes it. The
    same inputs and code always map to the same folder, so concurrent runs of one step
    agree on the place and a finished folder is simply reused.
    """
    key = sha256_text(*identity, code_version((entry,)) if entry else "")[:KEY_CHARS]
    return load_settings().home / stage / key


def current_store() -> Store:
    """The store `TRAINFLOW_STORE` names, caching into this home (one client per process)."""
    settings = load_settings()
    return _open(settings.store, str(settings.cache_dir))


@functools.lru_cache(maxsize=4)
def _open(location: str, cache: str) -> Store:
    return open_store(location, Path(cache))


def stored(path: Path) -> FileRef:
    """Describe a file a task made and put it into the store, so any machine can fetch it."""
    ref = FileRef.of(path)
    current_store().put(path, ref.sha256)
    return ref


def local_path(ref: FileRef) -> Path:
    """A path on this machine holding `ref`'s bytes (fetched from the store if need be)."""
    return materialize(ref, current_store())


def available(ref: FileRef) -> bool:
    """Whether a task here could open `ref`: the file is on this machine or in the store.

    The local file counts only with the right bytes (hashed once per process and version of
    the file): one edited in place, which in a folder store may be the stored object too,
    expires the entry, and the step runs and writes it anew.
    """
    path = Path(ref.path)
    return (path.is_file() and verified(path, ref.sha256)) or current_store().exists(ref.sha256)
