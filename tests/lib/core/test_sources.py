"""Sources a run from the Prefect API may read: http(s) URLs and files under the roots."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.core.errors import InputError, SourceNotAllowedError
from lib.core.settings import SOURCE_ROOTS_VARIABLE, load_settings
from lib.core.sources import check_source_allowed


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "shared" / "in").mkdir(parents=True)
    return (tmp_path / "shared").resolve()


@pytest.mark.parametrize("source", ["https://example.org/book.xlsx", "http://10.0.0.1/b.xlsx"])
def test_urls_pass_without_roots(source: str) -> None:
    check_source_allowed(source, [])


def test_files_under_a_root_pass_as_paths_and_file_urls(root: Path) -> None:
    check_source_allowed(str(root / "in" / "book.xlsx"), [root])
    check_source_allowed((root / "in" / "book.xlsx").as_uri(), [root])


@pytest.mark.parametrize("source", ["/etc/passwd", "file:///etc/passwd", "~/.ssh/id_rsa"])
def test_files_outside_every_root_are_refused_without_reading_them(root: Path, source: str) -> None:
    with pytest.raises(SourceNotAllowedError, match=r"TRAINFLOW_SOURCE_ROOTS \(.*shared\)") as e:
        check_source_allowed(source, [root])
    assert "root:" not in str(e.value)  # nothing of the file's content


def test_no_roots_means_no_local_files(root: Path) -> None:
    with pytest.raises(SourceNotAllowedError, match="none: TRAINFLOW_SOURCE_ROOTS is unset"):
        check_source_allowed(str(root / "in" / "book.xlsx"), [])


def test_climbing_out_of_a_root_is_refused(root: Path) -> None:
    with pytest.raises(SourceNotAllowedError):
        check_source_allowed(str(root / "in" / ".." / ".." / "secret.xlsx"), [root])


def test_a_link_inside_a_root_to_a_file_outside_is_refused(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.xlsx"
    secret.write_bytes(b"PK")
    (root / "in" / "link.xlsx").symlink_to(secret)
    with pytest.raises(SourceNotAllowedError):
        check_source_allowed(str(root / "in" / "link.xlsx"), [root])


def test_a_sibling_with_the_roots_name_as_prefix_is_outside(root: Path) -> None:
    with pytest.raises(SourceNotAllowedError):
        check_source_allowed(str(root.parent / "shared-other" / "book.xlsx"), [root])


def test_other_schemes_are_bad_input() -> None:
    with pytest.raises(InputError, match="scheme 'ftp'"):
        check_source_allowed("ftp://host/book.xlsx", [])


def test_roots_come_from_the_environment_resolved(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b" / ".." / "c"
    settings = load_settings(environ={SOURCE_ROOTS_VARIABLE: f"{first}:{second}:"})
    assert settings.source_roots == (first.resolve(), (tmp_path / "c").resolve())
    assert load_settings(environ={}).source_roots == ()
