"""Content hashes: files, unambiguous text tuples, and a code version that sees helper edits."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lib.hashing import CHUNK_BYTES, code_version, sha256_file, sha256_text

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


@pytest.fixture
def probe_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A throwaway importable package `PACKAGE` with a helper module, removed afterwards."""
    root = tmp_path / "src"
    package = root / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from . import helper\n")
    (package / "helper.py").write_text("def scale(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(root))
    yield package
    _forget(PACKAGE)


def _forget(package: str) -> None:
    for name in [name for name in sys.modules if name.split(".")[0] == package]:
        del sys.modules[name]


def test_code_version_changes_when_a_helper_module_changes(probe_package: Path) -> None:
    before = code_version([PACKAGE])
    assert code_version([PACKAGE]) == before
    (probe_package / "helper.py").write_text("def scale(x):\n    return 3 * x\n")
    _forget(PACKAGE)
    assert code_version([PACKAGE]) != before


def test_code_version_of_a_single_module_sees_its_edits(probe_package: Path) -> None:
    module = f"{PACKAGE}.helper"
    before = code_version([module])
    (probe_package / "helper.py").write_text("def scale(x):\n    return x + x\n")
    _forget(PACKAGE)
    assert code_version([module]) != before


def test_code_version_sees_a_new_file_in_a_package(probe_package: Path) -> None:
    before = code_version([PACKAGE])
    (probe_package / "extra.py").write_text("VALUE = 1\n")
    assert code_version([PACKAGE]) != before


def test_code_version_ignores_name_order_and_duplicates(probe_package: Path) -> None:
    names = [f"{PACKAGE}.helper", PACKAGE]
    assert code_version(names) == code_version([*reversed(names), PACKAGE])
    assert code_version([PACKAGE]) != code_version(names)


def test_code_version_names_a_missing_module() -> None:
    with pytest.raises(ModuleNotFoundError, match="trainflow_no_such_module"):
        code_version(["trainflow_no_such_module"])
