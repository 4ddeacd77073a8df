"""Where task outputs live: content-addressed folders under TRAINFLOW_HOME."""

from __future__ import annotations

from pathlib import Path

from lib.hashing import code_version, sha256_text
from lib.settings import load_settings

KEY_CHARS = 16


def output_dir(stage: str, *identity: str, modules: tuple[str, ...] = ()) -> Path:
    """Folder for one output, named by the hash of what determines its content.

    `identity` holds input hashes and parameters; `modules` the lib code that makes it. The
    same inputs and code always map to the same folder, so concurrent runs of one step
    agree on the place and a finished folder is simply reused.
    """
    key = sha256_text(*identity, code_version(modules) if modules else "")[:KEY_CHARS]
    return load_settings().home / stage / key
