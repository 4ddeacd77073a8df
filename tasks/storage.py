"""Where task outputs live: content-addressed folders under TRAINFLOW_HOME."""

from __future__ import annotations

from pathlib import Path

from lib.core.code_version import code_version
from lib.core.hashing import sha256_text
from lib.core.settings import load_settings

KEY_CHARS = 16


def output_dir(stage: str, *identity: str, entry: str | None = None) -> Path:
    """Folder for one output, named by the hash of what determines its content.

    `identity` holds input hashes and parameters; `entry` the lib module that makes it. The
    same inputs and code always map to the same folder, so concurrent runs of one step
    agree on the place and a finished folder is simply reused.
    """
    key = sha256_text(*identity, code_version((entry,)) if entry else "")[:KEY_CHARS]
    return load_settings().home / stage / key
