"""Reading user table files safely: sheet discovery, column selection, hostile files."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openpyxl
import openpyxl.xml
import openpyxl.xml.functions
import pandas as pd
import pytest

from lib.core import table_files as workbook
from lib.core.table_files import (
    MAX_ARCHIVE_ENTRIES,
    MAX_UNCOMPRESSED_BYTES,
    WorkbookError,
    format_rows,
    read_csv_cells,
    read_parquet_cells,
    read_xlsx_cells,
)

COLUMNS = ("A1", "B2", "C3")
SHEET_XML = "xl/worksheets/sheet1.xml"
STRINGS_XML = "xl/sharedStrings.xml"
STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{level} "{("&lol" + (str(level - 1) if level > 1 else "") + ";") * 10}">\n'
        for level in range(1, 10)
    )
    + "]>\n"
)
MEBIBYTE = 2**20


def write_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    """A workbook with one sheet per entry, rows appended from the top (no cell = None)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def rewrite_entries(path: Path, changes: dict[str, Callable[[bytes], bytes]]) -> None:
    """Rebuild the zip with some entries transformed; a missing entry is created from b""."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    for name, change in changes.items():
        entries[name] = change(entries.get(name, b""))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)


def small_table(path: Path) -> Path:
    return write_xlsx(path, {"Data": [list(COLUMNS), [1, 2, 3], [4, 5, 6]]})


def test_openpyxl_parses_xml_with_defusedxml() -> None:
    assert openpyxl.xml.DEFUSEDXML
    assert openpyxl.xml.functions.iterparse.__module__.startswith("defusedxml")


def test_refuses_to_read_workbooks_without_defusedxml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = small_table(tmp_path / "table.xlsx")
    monkeypatch.setattr(openpyxl.xml, "DEFUSEDXML", False)
    with pytest.raises(RuntimeError, match="Expected openpyxl to parse workbook XML with defused"):
        read_xlsx_cells(path, COLUMNS)


def test_finds_the_header_sheet_by_its_columns_and_drops_trailing_blanks(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "table.xlsx",
        {
            "Φύλλο2": [],
            "Φύλλο1": [["C3", "A1", "notes", "B2"], [3, 1, "x", 2], [6, 4, None, 5]],
            "Φύλλο3": [],
        },
    )
    book = openpyxl.load_workbook(path)
    sheet = book["Φύλλο1"]
    sheet["A9"] = "   "  # whitespace and styled empty cells below and right of the data
    sheet["L40"].number_format = "0.00"
    book.save(path)

    cells = read_xlsx_cells(path, COLUMNS)

    assert cells.sheet == "Φύλλο1"
    assert cells.columns == COLUMNS
    assert cells.rows == [(1, 2, 3), (4, 5, 6)]
    assert cells.first_row == 2
    assert cells.location == f"'{path}', sheet 'Φύλλο1'"


def test_keeps_blank_rows_inside_the_data_and_counts_rows_below_a_title(tmp_path: Path) -> None:
    rows: list[list[object]] = [["Survey"], [], list(COLUMNS), [1, 2, 3], [], [4, None, 6]]
    path = write_xlsx(tmp_path / "table.xlsx", {"Data": rows})

    cells = read_xlsx_cells(path, COLUMNS)

    assert cells.first_row == 4
    assert cells.rows == [(1, 2, 3), (None, None, None), (4, None, 6)]


def test_reads_rows_below_a_wrong_declared_dimension(tmp_path: Path) -> None:
    path = small_table(tmp_path / "table.xlsx")
    rewrite_entries(path, {SHEET_XML: lambda xml: xml.replace(b'ref="A1:C3"', b'ref="A1:C2"')})

    assert read_xlsx_cells(path, COLUMNS).rows == [(1, 2, 3), (4, 5, 6)]


def test_reports_missing_and_repeated_columns_with_sheet_and_letters(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "table.xlsx", {"Data": [["A1", "B2", "X", "B2"], [1, 2, 0, 2]]})

    with pytest.raises(WorkbookError) as caught:
        read_xlsx_cells(path, COLUMNS)

    message = str(caught.value)
    assert f"'{path}', sheet 'Data'" in message
    assert "missing C3 (header holds: A1, B2, X, B2)" in message
    assert "B2 repeated in columns B and D" in message


def test_refuses_a_workbook_whose_sheets_are_all_empty(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "table.xlsx", {"One": [], "Two": []})

    with pytest.raises(WorkbookError, match=r"exactly one sheet with a header row naming A1, B2"):
        read_xlsx_cells(path, COLUMNS)


def test_refuses_two_sheets_with_the_header(tmp_path: Path) -> None:
    table: list[list[object]] = [list(COLUMNS), [1, 2, 3]]
    path = write_xlsx(tmp_path / "table.xlsx", {"One": table, "Two": table})

    with pytest.raises(WorkbookError, match=r"headers on sheets 'One', 'Two'; keep one"):
        read_xlsx_cells(path, COLUMNS)


def test_refuses_a_header_without_data_rows(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "table.xlsx", {"Data": [list(COLUMNS), [], [None, "  "]]})

    with pytest.raises(WorkbookError, match=r"sheet 'Data': expected at least one data row"):
        read_xlsx_cells(path, COLUMNS)


def _csv_renamed(path: Path) -> None:
    path.write_text("A1,B2,C3\n1,2,3\n")


def _truncated(path: Path) -> None:
    small_table(path)
    path.write_bytes(path.read_bytes()[:1000])


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def _legacy_xls(path: Path) -> None:
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))


def _zip_of_other_things(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "not a spreadsheet")


@pytest.mark.parametrize(
    ("build", "received"),
    [
        (lambda path: path.write_bytes(b""), r"received an empty file \(0 bytes\)"),
        (_csv_renamed, r"received text starting 'A1,B2,C3' \(a CSV file renamed\?\)"),
        (_truncated, r"received a truncated or damaged zip archive \(1,000 bytes\)"),
        (_random_bytes, r"received 4,096 bytes starting [0-9a-f ]+\)"),
        (_legacy_xls, r"received an OLE2 compound file: a legacy \.xls"),
        (_zip_of_other_things, r"holding a readable Office Open XML spreadsheet; received a part"),
    ],
    ids=["zero-bytes", "csv-renamed", "truncated", "random-bytes", "legacy-xls", "other-zip"],
)
def test_refuses_files_that_are_not_xlsx_workbooks(
    tmp_path: Path, build: Callable[[Path], object], received: str
) -> None:
    path = tmp_path / "table.xlsx"
    build(path)

    with pytest.raises(WorkbookError, match=r"is not an Excel \.xlsx workbook \(expected") as e:
        read_xlsx_cells(path, COLUMNS)
    assert e.match(received)


def _entity_bomb_in_sheet(xml: bytes) -> bytes:
    body = xml.split(b"?>", 1)[-1] if xml.startswith(b"<?xml") else xml
    return BILLION_LAUGHS.encode() + body.replace(b"<v>1</v>", b"<v>&lol9;</v>")


def _shared_strings_bomb(_: bytes) -> bytes:
    return (
        BILLION_LAUGHS
        + '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
        + 'uniqueCount="1"><si><t>&lol9;</t></si></sst>'
    ).encode()


def _declare_shared_strings(types: bytes) -> bytes:
    override = f'<Override PartName="/{STRINGS_XML}" ContentType="{STRINGS_TYPE}" />'
    return types.replace(b"</Types>", override.encode() + b"</Types>")


@pytest.mark.parametrize(
    "changes",
    [
        {SHEET_XML: _entity_bomb_in_sheet},
        {STRINGS_XML: _shared_strings_bomb, "[Content_Types].xml": _declare_shared_strings},
    ],
    ids=["sheet-xml", "shared-strings"],
)
def test_refuses_xml_entity_bombs(
    tmp_path: Path, changes: dict[str, Callable[[bytes], bytes]]
) -> None:
    path = small_table(tmp_path / "table.xlsx")
    rewrite_entries(path, changes)

    with pytest.raises(WorkbookError, match=r"is refused: its XML declares entities .*lol"):
        read_xlsx_cells(path, COLUMNS)


def _add_spaces_entry(path: Path, name: str, mebibytes: int) -> None:
    """Append an entry inflating to `mebibytes` MiB of spaces, written in chunks."""
    chunk = b" " * MEBIBYTE
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open(name, "w") as entry,
    ):
        for _ in range(mebibytes):
            entry.write(chunk)


def _forbid_inflating(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a zip entry was opened before the bomb check refused the file")

    monkeypatch.setattr(zipfile.ZipFile, "open", refuse)


def test_refuses_a_zip_bomb_from_declared_sizes_without_inflating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bomb.xlsx"
    _add_spaces_entry(path, SHEET_XML, 300)
    assert path.stat().st_size < 2 * MEBIBYTE
    _forbid_inflating(monkeypatch)

    with pytest.raises(WorkbookError, match=r"refused as a possible zip bomb") as caught:
        read_xlsx_cells(path, COLUMNS)
    assert caught.match(rf"at most {MAX_UNCOMPRESSED_BYTES:,} bytes .* Received: 314,572,800")


def test_refuses_a_highly_compressed_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = small_table(tmp_path / "table.xlsx")
    _add_spaces_entry(path, "xl/media/padding.bin", 8)
    _forbid_inflating(monkeypatch)

    with pytest.raises(WorkbookError, match=r"Received: entry 'xl/media/padding.bin' expands"):
        read_xlsx_cells(path, COLUMNS)


def test_refuses_too_many_zip_entries(tmp_path: Path) -> None:
    path = small_table(tmp_path / "table.xlsx")
    with zipfile.ZipFile(path, "a") as archive:
        for index in range(MAX_ARCHIVE_ENTRIES):
            archive.writestr(f"xl/extra/{index}.xml", b"")

    with pytest.raises(WorkbookError, match=rf"at most {MAX_ARCHIVE_ENTRIES:,} zip entries"):
        read_xlsx_cells(path, COLUMNS)


def _declare_size(path: Path, name: str, size: int) -> None:
    """Make the central directory lie about an entry's uncompressed size."""
    data = bytearray(path.read_bytes())
    position = data.find(b"PK\x01\x02")
    while position >= 0:
        (name_length,) = struct.unpack_from("<H", data, position + 28)
        if data[position + 46 : position + 46 + name_length] == name.encode():
            struct.pack_into("<I", data, position + 24, size)
        position = data.find(b"PK\x01\x02", position + 4)
    path.write_bytes(bytes(data))


def test_an_entry_lying_about_its_size_is_not_inflated_past_it(tmp_path: Path) -> None:
    path = small_table(tmp_path / "table.xlsx")
    rewrite_entries(path, {SHEET_XML: lambda xml: xml + b" " * (4 * MEBIBYTE)})
    _declare_size(path, SHEET_XML, 64)

    with pytest.raises(WorkbookError, match=r"could not read: BadZipFile: Bad CRC-32"):
        read_xlsx_cells(path, COLUMNS)


def test_refuses_files_over_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = small_table(tmp_path / "table.xlsx")
    monkeypatch.setattr(workbook, "MAX_FILE_BYTES", 100)

    with pytest.raises(WorkbookError, match=r"too large .* Expected at most 100 bytes"):
        read_xlsx_cells(path, COLUMNS)


def test_reads_csv_cells_as_numbers_or_text(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("\ufeffB2,A1,C3,notes\n2,1,3,x\n\n5,abc,1e999,\n,,,\n", encoding="utf-8")

    cells = read_csv_cells(path, COLUMNS)

    assert cells.sheet is None
    assert cells.first_row == 2
    assert cells.rows == [(1.0, 2.0, 3.0), (None, None, None), ("abc", 5.0, float("inf"))]


def test_refuses_csv_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_bytes(b"A1,B2,C3\n\xff\xfe,1,2\n")

    with pytest.raises(WorkbookError, match=r"is not a CSV file \(expected UTF-8 text; .*0xff"):
        read_csv_cells(path, COLUMNS)


def test_reports_repeated_csv_columns_by_position(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("A1,B2,C3,A1\n1,2,3,1\n")

    with pytest.raises(WorkbookError, match=r"A1 repeated in columns #1 and #4"):
        read_csv_cells(path, COLUMNS)


def test_reads_parquet_cells_numbered_from_one(tmp_path: Path) -> None:
    path = tmp_path / "table.parquet"
    frame = pd.DataFrame({"C3": [3.0, np.nan], "A1": [1, 4], "B2": ["2", "5"], "other": [0, 0]})
    frame.to_parquet(path)

    cells = read_parquet_cells(path, COLUMNS)

    assert cells.first_row == 1
    assert cells.rows == [(1, "2", 3.0), (4, "5", None)]  # pandas writes NaN as a Parquet null


def test_refuses_a_file_that_is_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "table.parquet"
    path.write_text("A1,B2,C3\n1,2,3\n")

    with pytest.raises(WorkbookError, match=r"is not a Parquet file .* received text starting"):
        read_parquet_cells(path, COLUMNS)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["1", "2"], "1, 2"),
        ([str(n) for n in range(1, 9)], "1, 2, 3, 4, 5 and 3 more"),
    ],
)
def test_format_rows_lists_the_first_few(items: list[str], expected: str) -> None:
    assert format_rows(items) == expected


def test_messages_quote_a_few_escaped_characters_of_the_file_never_more(tmp_path: Path) -> None:
    secret = "\x1b[2J" + "s3cret " * 40  # a terminal escape, then far more than a name
    path = tmp_path / "table.csv"
    path.write_text(f"A1,{secret},B2\n1,2,3\n")

    with pytest.raises(WorkbookError) as caught:
        read_csv_cells(path, COLUMNS)

    message = str(caught.value)
    assert "\x1b" not in message and "\\x1b[2J" in message
    assert message.count("s3cret") == workbook.SHOWN_CHARS // len("s3cret ")
    assert "s3cret s3cret ..., B2)" in message


def test_a_text_file_is_described_by_its_first_few_characters(tmp_path: Path) -> None:
    path = tmp_path / "notes.xlsx"
    path.write_text("password=" + "x" * 200 + "\n")

    with pytest.raises(WorkbookError, match=r"text starting 'password=x{23}'\.\.\. \(a CSV"):
        read_xlsx_cells(path, COLUMNS)


@pytest.mark.parametrize(
    ("value", "quote", "expected"),
    [("Data", True, "'Data'"), ("a\tb", False, "a\\tb"), ("x" * 40, True, f"'{'x' * 32}'...")],
)
def test_shown_cuts_and_escapes(value: str, quote: bool, expected: str) -> None:
    assert workbook.shown(value, quote=quote) == expected
