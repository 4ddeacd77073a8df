"""Reading user table files safely: sheet discovery, column selection, hostile files."""

from __future__ import annotations

import re
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openpyxl
import openpyxl.xml
import openpyxl.xml.functions
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lib.core import table_files as workbook
from lib.core.table_files import (
    EXCEL_MAX_ROWS,
    MAX_ARCHIVE_ENTRIES,
    MAX_BLANK_ROWS,
    MAX_CELL_CHARS,
    MAX_DATA_ROWS,
    MAX_UNCOMPRESSED_BYTES,
    WorkbookError,
    format_rows,
    read_csv_cells,
    read_parquet_cells,
    read_xlsx_cells,
)
from tests.fixtures.hostile import (
    FILE_ROW_GROUPS,
    MAIN_NS,
    ThriftStruct,
    craft_xlsx,
    header_row,
    rewrite_parquet_footer,
    row_xml,
    set_chunk_sizes,
    set_row_count,
    write_parquet,
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
    mebibytes = MAX_UNCOMPRESSED_BYTES // MEBIBYTE + 1
    _add_spaces_entry(path, SHEET_XML, mebibytes)
    assert path.stat().st_size < 4 * MEBIBYTE
    _forbid_inflating(monkeypatch)

    with pytest.raises(WorkbookError, match=r"refused as a possible zip bomb") as caught:
        read_xlsx_cells(path, COLUMNS)
    received = mebibytes * MEBIBYTE
    assert caught.match(rf"at most {MAX_UNCOMPRESSED_BYTES:,} bytes .* Received: {received:,}")


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

    with pytest.raises(
        WorkbookError,
        match=r"inflate intact; received entry .*sheet1.xml. that does not: BadZipFile: Bad CRC-32",
    ):
        read_xlsx_cells(path, COLUMNS)


def test_refuses_files_over_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = small_table(tmp_path / "table.xlsx")
    monkeypatch.setattr(workbook, "MAX_FILE_BYTES", 100)

    with pytest.raises(WorkbookError, match=r"too large .* Expected at most 100 bytes"):
        read_xlsx_cells(path, COLUMNS)


# --- row numbers, gaps and blank floods ---------------------------------------------------------

HEADER_ROW = header_row("A1", "B2")


def test_crafted_workbooks_read_like_spreadsheet_ones(tmp_path: Path) -> None:
    path = craft_xlsx(tmp_path / "t.xlsx", HEADER_ROW + row_xml(2, 1, 2) + row_xml(3, 3, 4))

    cells = read_xlsx_cells(path, ("A1", "B2"))

    assert (cells.sheet, cells.first_row, cells.rows) == ("S1", 2, [(1, 2), (3, 4)])


def test_rows_missing_from_the_xml_read_as_blank_rows_with_excel_numbers(tmp_path: Path) -> None:
    path = craft_xlsx(tmp_path / "t.xlsx", HEADER_ROW + row_xml(2, 1, 2) + row_xml(5, 3, 4))

    cells = read_xlsx_cells(path, ("A1", "B2"))

    assert cells.rows == [(1, 2), (None, None), (None, None), (3, 4)]


def test_blank_rows_after_the_data_are_ignored_up_to_excels_last_row(tmp_path: Path) -> None:
    # A formatted, empty row far below the data, as Excel writes one.
    stray = f'<row r="{EXCEL_MAX_ROWS}" ht="30" customHeight="1"><c s="0"/></row>'
    path = craft_xlsx(tmp_path / "t.xlsx", HEADER_ROW + row_xml(2, 1, 2) + stray)

    assert read_xlsx_cells(path, ("A1", "B2")).rows == [(1, 2)]


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        (1_000_000_000, "1,000,000,000"),
        (EXCEL_MAX_ROWS + 1, "1,048,577"),
        ("1e300", r"1\.000e\+300"),
    ],
)
def test_refuses_row_numbers_beyond_excels_last_row(
    tmp_path: Path, number: int | str, shown: str
) -> None:
    rows = HEADER_ROW + row_xml(2, 1, 2) + f'<row r="{number}"><c><v>3</v></c></row>'
    path = craft_xlsx(tmp_path / "gap.xlsx", rows)

    with pytest.raises(
        WorkbookError,
        match=rf"sheet 'S1': expected row numbers up to 1,048,576 "
        rf"\(Excel's last row\). Received: row {shown}\.$",
    ):
        read_xlsx_cells(path, ("A1", "B2"))


def test_refuses_a_gap_of_blank_rows_before_more_data(tmp_path: Path) -> None:
    path = craft_xlsx(tmp_path / "gap.xlsx", HEADER_ROW + row_xml(2, 1, 2) + row_xml(900_000, 3, 4))

    with pytest.raises(
        WorkbookError,
        match=rf"sheet 'S1': expected at most {MAX_BLANK_ROWS:,} blank rows between the header "
        r"and the last data row \(MAX_BLANK_ROWS\). Received: 899,997, the last 899,997 in rows "
        r"3 to 899,999 before data in row 900,000\.",
    ):
        read_xlsx_cells(path, ("A1", "B2"))


def test_refuses_a_flood_of_blank_rows_written_out_before_more_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workbook, "MAX_BLANK_ROWS", 3)
    blanks = "".join(
        f'<row r="{number}"><c/><c t="inlineStr"><is><t> </t></is></c></row>'
        for number in range(3, 8)
    )
    path = craft_xlsx(
        tmp_path / "flood.xlsx", HEADER_ROW + row_xml(2, 1, 2) + blanks + row_xml(8, 3)
    )

    with pytest.raises(
        WorkbookError,
        match=r"at most 3 blank rows .* Received: 5, the last 5 in "
        r"rows 3 to 7 before data in row 8\.",
    ):
        read_xlsx_cells(path, ("A1", "B2"))


def test_blank_rows_after_the_data_are_free_however_many(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workbook, "MAX_BLANK_ROWS", 2)
    monkeypatch.setattr(workbook, "MAX_CSV_RECORDS", 2)
    blanks = "".join(f'<row r="{number}"/>' for number in range(3, 8))
    path = craft_xlsx(tmp_path / "flood.xlsx", HEADER_ROW + row_xml(2, 1, 2) + blanks)

    assert read_xlsx_cells(path, ("A1", "B2")).rows == [(1, 2)]


@pytest.mark.parametrize(
    ("rows", "received"),
    [
        (row_xml(2, 1, 2) + row_xml(2, 3, 4), "row 2 after row 2"),
        (row_xml(5, 1, 2) + row_xml(3, 3, 4), "row 3 after row 5"),
    ],
    ids=["repeated", "descending"],
)
def test_refuses_row_numbers_out_of_order(tmp_path: Path, rows: str, received: str) -> None:
    path = craft_xlsx(tmp_path / "order.xlsx", HEADER_ROW + rows)

    with pytest.raises(
        WorkbookError,
        match=rf"expected row numbers rising from 1, as spreadsheets "
        rf"write them. Received: {received}\.",
    ):
        read_xlsx_cells(path, ("A1", "B2"))


def test_refuses_sheets_that_share_one_worksheet_part(tmp_path: Path) -> None:
    path = craft_xlsx(tmp_path / "t.xlsx", HEADER_ROW + row_xml(2, 1, 2), sheets=500)

    with pytest.raises(
        WorkbookError,
        match=r"expected every sheet to have its own worksheet "
        r"part. Received: part 'xl/worksheets/sheet1.xml' named by 500 sheets",
    ):
        read_xlsx_cells(path, ("A1", "B2"))


def test_refuses_a_shared_string_longer_than_a_cell_holds(tmp_path: Path) -> None:
    path = small_table(tmp_path / "table.xlsx")
    rewrite_entries(
        path,
        {
            STRINGS_XML: lambda _: (
                f'<sst xmlns="{MAIN_NS}"><si><t>{"x" * (MAX_CELL_CHARS + 1)}</t></si></sst>'
            ).encode(),
            "[Content_Types].xml": _declare_shared_strings,
        },
    )

    with pytest.raises(
        WorkbookError,
        match=r"cell texts of at most 32,767 characters "
        r"\(MAX_CELL_CHARS, Excel's limit\). Received: shared string #0 of 32,768",
    ):
        read_xlsx_cells(path, COLUMNS)


def test_refuses_a_workbook_with_more_xml_elements_than_it_parses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = small_table(tmp_path / "table.xlsx")
    monkeypatch.setattr(workbook, "MAX_XML_ELEMENTS", 100)
    _forbid_parsing(monkeypatch)

    with pytest.raises(
        WorkbookError,
        match=r"refused as too costly to parse. Expected at most 100 "
        r"XML elements in all parts together \(MAX_XML_ELEMENTS",
    ):
        read_xlsx_cells(path, COLUMNS)


def test_refuses_a_styles_part_with_too_many_elements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = small_table(tmp_path / "table.xlsx")
    monkeypatch.setattr(workbook, "MAX_STYLE_ELEMENTS", 10)
    _forbid_parsing(monkeypatch)

    with pytest.raises(
        WorkbookError,
        match=r"at most 10 XML elements in its styles part "
        r"\(MAX_STYLE_ELEMENTS\). Received: more in entry 'xl/styles.xml'",
    ):
        read_xlsx_cells(path, COLUMNS)


def _forbid_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("openpyxl was asked to load the workbook before the count refused it")

    monkeypatch.setattr(workbook, "_load_workbook", refuse)


def test_messages_quote_at_most_a_few_bytes_of_the_file(tmp_path: Path) -> None:
    junk = "9" * 5_000 + "\x1b[31m"
    path = craft_xlsx(tmp_path / "t.xlsx", HEADER_ROW + f'<row r="{junk}"/>')

    with pytest.raises(WorkbookError, match=r"could not read") as caught:
        read_xlsx_cells(path, ("A1", "B2"))
    assert len(str(caught.value)) < len(str(path)) + 400
    assert "\x1b" not in str(caught.value)


def test_refuses_a_flood_of_blank_csv_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workbook, "MAX_CSV_RECORDS", 100)
    path = tmp_path / "table.csv"
    path.write_text("A1,B2,C3\n1,2,3\n" + ",,\n" * 1_000)

    with pytest.raises(
        WorkbookError,
        match=r"too many rows below the header. Expected at most "
        r"100 records, blank or not \(MAX_CSV_RECORDS\)",
    ):
        read_csv_cells(path, COLUMNS)


def test_refuses_csv_data_after_too_many_blank_records(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("A1,B2,C3\n1,2,3\n" + "\n" * (MAX_BLANK_ROWS + 1) + "4,5,6\n")

    with pytest.raises(
        WorkbookError,
        match=rf"Received: {MAX_BLANK_ROWS + 1:,}, the last "
        rf"{MAX_BLANK_ROWS + 1:,} in rows 3 to {MAX_BLANK_ROWS + 3:,} before data in "
        rf"row {MAX_BLANK_ROWS + 4:,}\.",
    ):
        read_csv_cells(path, COLUMNS)


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


# --- Parquet files whose footer or pages lie ---------------------------------------------------


def small_parquet(path: Path, rows: int = 3, **options: object) -> Path:
    numbers = [float(index) for index in range(rows)]
    return write_parquet(path, {"A1": numbers, "B2": numbers, "C3": numbers}, **options)


def _absurd_row_count(path: Path) -> None:
    rewrite_parquet_footer(small_parquet(path), set_row_count(10**12))


def _more_rows_than_data(path: Path) -> None:
    rewrite_parquet_footer(small_parquet(path), set_row_count(200))


def _rows_not_summing(path: Path) -> None:
    rewrite_parquet_footer(small_parquet(path), lambda footer: footer.set(3, 2))


def _chunk_past_the_file(path: Path) -> None:
    rewrite_parquet_footer(small_parquet(path), set_chunk_sizes(compressed=10**15))


def _absurd_chunk_sizes(path: Path) -> None:
    rewrite_parquet_footer(small_parquet(path), set_chunk_sizes(uncompressed=10**15))


def _pages_hiding_nulls(path: Path) -> None:
    """100,000 null values in a few bytes of levels, under a footer claiming 3 rows."""
    nulls = pa.nulls(100_000, pa.float64())
    write_parquet(path, {"A1": nulls, "B2": nulls, "C3": nulls})
    rewrite_parquet_footer(path, set_row_count(3))


def _footer_of_many_row_groups(path: Path) -> None:
    """3,000 copies of the one row group: a footer of about 1 MB."""

    def repeat(footer: ThriftStruct) -> None:
        kind, groups = footer.get(FILE_ROW_GROUPS)
        footer.set(FILE_ROW_GROUPS, (kind, groups * 3_000))

    rewrite_parquet_footer(small_parquet(path), repeat)


def _damaged_page_header(path: Path) -> None:
    small_parquet(path)
    data = bytearray(path.read_bytes())
    data[4:16] = b"\x15" + b"\xff" * 11  # the first page header: a varint that never ends
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            _absurd_row_count,
            rf"has too many rows. Expected at most {MAX_DATA_ROWS:,} \(MAX_DATA_ROWS\). "
            r"Received: 1,000,000,000,000 rows\.",
        ),
        (
            _more_rows_than_data,
            r"expected the column A1, row group 0 pages to hold one value per "
            r"row \(200\). Received: 3 values\.",
        ),
        (
            _rows_not_summing,
            r"expected its footer's row count to be the sum of its row groups'. "
            r"Received: 2 rows, row groups of 3 rows\.",
        ),
        (
            _chunk_past_the_file,
            r"expected the column A1, row group 0 chunk within the data "
            r"\(bytes 4 to [\d,]+\). Received: bytes 4 to 1.000e\+15\.",
        ),
        (
            _absurd_chunk_sizes,
            rf"chunks declaring at most {MAX_UNCOMPRESSED_BYTES:,} bytes uncompressed "
            r"\(MAX_UNCOMPRESSED_BYTES\). Received: 3.000e\+15 bytes\.",
        ),
        (_pages_hiding_nulls, r"pages to hold one value per row \(3\). Received: 100,000 values"),
        (
            _footer_of_many_row_groups,
            r"expected a Parquet footer of at most 100,000 bytes \(MAX_PARQUET_FOOTER_BYTES\). "
            r"Received: [\d,]+ bytes\.",
        ),
        (
            _damaged_page_header,
            r"is a damaged Parquet file \(column A1, row group 0: Expected a "
            r"varint of at most 10 bytes",
        ),
    ],
    ids=[
        "rows-1e12",
        "rows-beyond-data",
        "rows-not-summing",
        "chunk-past-file",
        "absurd-chunk-sizes",
        "pages-hiding-nulls",
        "footer-too-large",
        "damaged-page-header",
    ],
)
def test_refuses_parquet_whose_footer_or_pages_lie_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build: Callable[[Path], None], message: str
) -> None:
    path = tmp_path / "table.parquet"
    build(path)
    _forbid_decoding(monkeypatch)
    monkeypatch.setattr(workbook, "MAX_PARQUET_FOOTER_BYTES", 100_000)

    with pytest.raises(WorkbookError, match=message) as caught:
        read_parquet_cells(path, COLUMNS)
    assert caught.match(rf"^'{re.escape(str(path))}'")


def _forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Arrow was asked to decode before the checks refused the file")

    monkeypatch.setattr(pq.ParquetFile, "read", refuse)


def test_refuses_a_page_that_inflates_past_the_limit_under_a_small_footer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The footer says 100 bytes; the page header (which Arrow allocates from) says 200,000.
    text = pa.array(["x" * 200_000, "y", "z"])
    path = write_parquet(
        tmp_path / "t.parquet",
        {"A1": text, "B2": text, "C3": text},
        compression="zstd",
        use_dictionary=False,
    )
    rewrite_parquet_footer(path, set_chunk_sizes(uncompressed=100))
    monkeypatch.setattr(workbook, "MAX_UNCOMPRESSED_BYTES", 100_000)
    _forbid_decoding(monkeypatch)

    with pytest.raises(
        WorkbookError,
        match=r"expected pages declaring at most 100,000 bytes "
        r"uncompressed in the wanted columns \(MAX_UNCOMPRESSED_BYTES\). "
        r"Received: more, by column A1, row group 0\.",
    ):
        read_parquet_cells(path, COLUMNS)


@pytest.mark.parametrize(
    ("limit", "options", "message"),
    [
        (
            "MAX_PARQUET_ROW_GROUPS",
            {"row_group_size": 1},
            r"expected at most 2 Parquet row groups \(MAX_PARQUET_ROW_GROUPS\). Received: 3\.",
        ),
        (
            "MAX_PARQUET_PAGES",
            {"data_page_size": 1, "write_batch_size": 1},
            r"expected at most 2 pages in the wanted columns \(MAX_PARQUET_PAGES\)",
        ),
    ],
    ids=["row-groups", "pages"],
)
def test_refuses_parquet_with_too_many_row_groups_or_pages(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    limit: str,
    options: dict[str, int],
    message: str,
) -> None:
    path = small_parquet(tmp_path / "t.parquet", **options)
    monkeypatch.setattr(workbook, limit, 2)

    with pytest.raises(WorkbookError, match=message):
        read_parquet_cells(path, COLUMNS)


def test_refuses_parquet_columns_that_are_not_one_value_per_row(tmp_path: Path) -> None:
    lists = pa.array([[1.0, 2.0], [3.0], []])
    path = write_parquet(tmp_path / "t.parquet", {"A1": lists, "B2": [1, 2, 3], "C3": [1, 2, 3]})

    with pytest.raises(
        WorkbookError,
        match=r"expected column A1 to hold one number, date, "
        r"boolean or text per row. Received: list<(item|element): double>\.",
    ):
        read_parquet_cells(path, COLUMNS)


def test_dictionary_text_becomes_one_string_shared_by_its_rows(tmp_path: Path) -> None:
    word = pa.DictionaryArray.from_arrays(pa.array([0, 0, 0], pa.int32()), pa.array(["w" * 100]))
    path = write_parquet(tmp_path / "t.parquet", {"A1": word, "B2": [1, 2, 3], "C3": [4, 5, 6]})

    cells = read_parquet_cells(path, COLUMNS)

    assert cells.rows[0][0] == "w" * 100
    assert cells.rows[0][0] is cells.rows[1][0] is cells.rows[2][0]


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
