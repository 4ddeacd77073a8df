"""Small descriptors that steps hand each other instead of data: a path and its content hash."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from lib.core.hashing import sha256_file


class FileRef(BaseModel):
    """A file by location and content; `exists` tells a cache whether it can still be used."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    sha256: str

    @classmethod
    def of(cls, path: Path) -> FileRef:
        """Describe an existing file, hashing its content."""
        return cls(path=str(path), sha256=sha256_file(path))

    def exists(self) -> bool:
        return Path(self.path).is_file()
