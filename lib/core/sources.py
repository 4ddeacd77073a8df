"""Which user sources a run may read: the worker's files are not for whoever can start a run.

The CLI's user names any file they can read themselves. A run started through the Prefect API
(a deployment) takes its `source` from whoever can reach that API, and a local path there
would let them have the worker read its own files (keys, configuration) into the raw store,
the registry's tags and error messages. Such a run may therefore name an http(s) URL, or a
file under one of the directories listed in ``TRAINFLOW_SOURCE_ROOTS``, and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lib.core.errors import SourceNotAllowedError
from lib.core.fetch import local_source
from lib.core.settings import SOURCE_ROOTS_VARIABLE


def check_source_allowed(source: str, roots: Sequence[Path]) -> None:
    """Refuse a local `source` outside `roots`; an http(s) URL always passes.

    The path is resolved first (symlinks, ``..``, relative to the working directory), so
    neither a link nor a climb leads out of a root. Whether the file exists is not checked
    here, and not told: the refusal reads the same either way.

    Args:
        source: a path, a ``file://`` URL or an http(s) URL, as given.
        roots: absolute, resolved directories (`Settings.source_roots`).

    Raises:
        SourceNotAllowedError: a local path outside every root.
        InputError: neither a local path nor an http(s) URL.
    """
    path = local_source(source)
    if path is None:
        return
    resolved = path.resolve()
    if any(resolved.is_relative_to(root) for root in roots):
        return
    allowed = ", ".join(map(str, roots)) if roots else f"none: {SOURCE_ROOTS_VARIABLE} is unset"
    raise SourceNotAllowedError(
        "Expected `source` to be an http(s) URL or a file under a directory of "
        f"{SOURCE_ROOTS_VARIABLE} ({allowed}), as for every run started through the "
        f"Prefect API. Received: source={source!r}"
    )
