"""Which failures count as expected: their message is the whole story, no traceback shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.core.errors import ExpectedError, InputError, SourceNotFoundError
from lib.core.fetch import ChecksumMismatchError, DownloadError, fetch_source
from lib.core.table_files import WorkbookError
from lib.siamese.idx import IdxFormatError
from lib.siamese.images import ImageFormatError
from lib.siamese.pairs import PairsFormatError


@pytest.mark.parametrize(
    "kind", [WorkbookError, IdxFormatError, ImageFormatError, PairsFormatError, SourceNotFoundError]
)
def test_bad_input_is_expected_and_still_a_value_error(kind: type[Exception]) -> None:
    assert issubclass(kind, InputError)
    assert issubclass(kind, ExpectedError) and issubclass(kind, ValueError)


def test_download_failures_are_expected_and_keep_their_old_base() -> None:
    assert issubclass(ChecksumMismatchError, DownloadError)
    assert issubclass(DownloadError, ExpectedError) and issubclass(DownloadError, RuntimeError)


def test_a_missing_source_is_expected_and_still_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match=r"source='.*nowhere\.xlsx'") as raised:
        fetch_source(str(tmp_path / "nowhere.xlsx"), tmp_path / "raw", max_bytes=1024)
    assert isinstance(raised.value, FileNotFoundError)


def test_an_unknown_scheme_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"Received: 'ftp://host/book\.xlsx' \(scheme 'ftp'\)"):
        fetch_source("ftp://host/book.xlsx", tmp_path / "raw", max_bytes=1024)
