"""Small descriptors that steps hand each other instead of data: a path and its content hash."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from lib.core.errors import ExpectedError
from lib.core.hashing import sha256_file


class FileRef(BaseModel):
    """A file by location and content; `exists` tells a cache whether it can still be used.

    Attributes:
        path: where the file is (for user data: its copy in the raw store).
        sha256: its content hash, the file's identity.
        origin: how the user knows the file, when that differs from `path`: the `--source`
            they typed, a pinned file's name. Messages name it (`named_as_given`). It says
            nothing about the content, so dumps, and with them cache keys, leave it out.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    sha256: str
    origin: str | None = Field(default=None, exclude=True)

    @classmethod
    def of(cls, path: Path) -> FileRef:
        """Describe an existing file, hashing its content."""
        return cls(path=str(path), sha256=sha256_file(path))

    def exists(self) -> bool:
        return Path(self.path).is_file()


@contextlib.contextmanager
def named_as_given(*refs: FileRef) -> Iterator[None]:
    """Let an expected error raised inside name each file by its `origin`, not by its copy.

    A reader names the path it opened, which for a user's file is the raw store's internal
    copy (``<home>/raw/<sha256>/book.xlsx``); the user typed something else. The error keeps
    its type and attributes; only its message changes.
    """
    try:
        yield
    except ExpectedError as error:
        if error.args and isinstance(error.args[0], str):
            message = error.args[0]
            for ref in refs:
                if ref.origin:
                    message = message.replace(ref.path, ref.origin)
            error.args = (message, *error.args[1:])
        raise
