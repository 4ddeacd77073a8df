"""A published file pinned by its sha256: what a download must deliver and from where."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    """One published file, pinned by its sha256.

    Attributes:
        name: file name, also its place under the raw store.
        mirror_path: where the file lies in a mirror laid out like ``../shared/data``.
        urls: published locations, tried in order after the mirrors.
        sha256: expected hex digest; ``None`` for user-supplied sources (still validated).
        size: expected size in bytes, when published (bounds a download).
    """

    name: str
    mirror_path: str
    urls: tuple[str, ...]
    sha256: str | None
    size: int | None = None
