"""Content hashes: files, unambiguous text tuples, and a code version that sees helper edits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lib.core.hashing import CHUNK_BYTES, sha256_file, sha256_text

PACKAGE = "trainflow_hashing_probe"


def test_sha256_file_matches_hashlib_across_chunk_boundaries(tmp_path: Path) -> None:
    content = bytes(range(256)) * (CHUNK_BYTES // 256 * 2 + 3)  # two chunks and a bit
    path = tmp_path / "blob.bin"
    path.write_bytes(content)
    assert sha256_file(path) == hashlib.sha256(content).hexdigest()


def test_sha256_file_of_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert sha256_file(path) == hashlib.sha256(b"").hexdigest()


def test_sha256_file_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.bin"):
        sha256_file(tmp_path / "absent.bin")


def test_sha256_text_is_unambiguous_across_part_boundaries() -> None:
    assert sha256_text("ab", "c") != sha256_text("a", "bc")
    assert sha256_text("a", "") != sha256_text("", "a")
    assert sha256_text("a") != sha256_text("a", "")


def test_sha256_text_is_deterministic_and_order_sensitive() -> None:
    assert sha256_text("seed", "hash") == sha256_text("seed", "hash")
    assert sha256_text("seed", "hash") != sha256_text("hash", "seed")
    assert len(sha256_text("x")) == 64
