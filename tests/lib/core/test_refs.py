"""FileRef: identity by content; the user's own name for a file only in messages."""

from __future__ import annotations

import pytest

from lib.core.fetch import ChecksumMismatchError
from lib.core.refs import FileRef, named_as_given
from lib.core.table_files import WorkbookError

RAW = "/home/u/.trainflow/raw/ab12/book.xlsx"


def test_origin_is_left_out_of_dumps_so_cache_keys_see_content_only() -> None:
    typed = FileRef(path=RAW, sha256="ab12", origin="~/Desktop/book.xlsx")
    assert typed.model_dump() == FileRef(path=RAW, sha256="ab12").model_dump()
    assert "Desktop" not in typed.model_dump_json()


def test_expected_errors_name_the_file_as_the_user_gave_it() -> None:
    ref = FileRef(path=RAW, sha256="ab12", origin="book.xlsx")
    with pytest.raises(WorkbookError) as caught, named_as_given(ref):
        raise WorkbookError(f"Invalid energy table in '{RAW}', sheet 'Data'")
    assert str(caught.value) == "Invalid energy table in 'book.xlsx', sheet 'Data'"


def test_the_error_keeps_its_type_and_attributes() -> None:
    ref = FileRef(path=RAW, sha256="ab12", origin="book.xlsx")
    with pytest.raises(ChecksumMismatchError) as caught, named_as_given(ref):
        raise ChecksumMismatchError(f"{RAW}: mismatch", [(RAW, "mismatch")], "ab12", ["cd34"])
    assert str(caught.value) == "book.xlsx: mismatch" and caught.value.received == ("cd34",)


def test_unexpected_errors_and_refs_without_origin_are_left_alone() -> None:
    with (
        pytest.raises(KeyError, match=RAW),
        named_as_given(FileRef(path=RAW, sha256="a", origin="b")),
    ):
        raise KeyError(RAW)
    with pytest.raises(WorkbookError, match=RAW), named_as_given(FileRef(path=RAW, sha256="a")):
        raise WorkbookError(RAW)
