"""User table files (.xlsx, .csv, .parquet) -> raw cells of the wanted columns, read safely.

Every table a user hands trainflow passes through here first, so this module owns the
defences and nothing else: each file is read once into memory under a size limit (the bytes
hashed are the bytes parsed), a workbook's zip directory is checked against named limits
before anything is decompressed, its XML is parsed by defusedxml (openpyxl uses it whenever it
is importable; `read_xlsx_cells` refuses to run otherwise), and every failure is one
`WorkbookError` naming the file, the sheet, the column and the rows. Typing and range checks
belong to the schema (`lib.energy.table`); here a cell is whatever the file holds.

Cost is bounded by what a file holds, never by what it claims: a workbook by its count of
XML elements (counted before parsing) and the rows present in its XML (row numbers may jump,
gaps are never iterated), a CSV by its records, a Parquet file by its page headers (walked
before Arrow decodes). Each limit is a named constant sized so that the worst file within it
reads in a few seconds and a few hundred MB on a 2-core machine (`benchmarks/hostile.py`).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import re
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import openpyxl.xml
import openpyxl.xml.functions
import pyarrow as pa
import pyarrow.parquet as pq
from defusedxml import DefusedXmlException
from openpyxl.reader.excel import ExcelReader
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._read_only import ReadOnlyWorksheet
from openpyxl.worksheet._reader import WorkSheetParser
from openpyxl.xml.constants import ARC_STYLE, SHEET_MAIN_NS

from lib.core.errors import InputError
from lib.core.inflate import inflated_chunks
from lib.core.parquet_pages import DATA_PAGE, DATA_PAGE_V2, PageHeaderError, read_page_headers
from lib.core.xlsx_columns import as_floats, read_csv_numbers, read_number_columns
from lib.core.xlsx_numbers import NotNumbers, read_part_numbers
from lib.core.xlsx_scan import NARROW_COLUMNS, PartScan, scan_chunks

EXCEL_MAX_ROWS = 1_048_576
"""Excel's last row; a sheet numbering a row beyond it was not written by a spreadsheet."""
MAX_FILE_BYTES = 128 * 2**20
"""Largest input file read: a workbook of Excel's 1,048,576 rows of ten numbers takes about
44 MB, a CSV of as many rows about 60 MB (the real workbook is 76 kB)."""
MAX_ARCHIVE_ENTRIES = 1_000
"""Most zip entries in a workbook; Excel writes a few dozen."""
MAX_UNCOMPRESSED_BYTES = 512 * 2**20
"""Largest total the zip entries (or Parquet column chunks) may declare once decompressed.

Python's `zipfile` stops every entry at its declared size (a lying header ends in a CRC
error), so checking declarations bounds what openpyxl can inflate, and so the memory one long
string in the XML can take. The real workbook declares 0.5 MB; `MAX_XML_ELEMENTS` limits a sheet
long before this does. A sheet of Excel's 1,048,576 rows of ten numbers declares about
350 MB.
"""
MAX_COMPRESSION_RATIO = 100
"""Largest uncompressed/compressed ratio of a big zip entry (sheet XML compresses ~7x)."""
RATIO_CHECK_MIN_BYTES = 2**20
"""Entries smaller than this may compress arbitrarily well: they cannot exhaust memory."""
MAX_XML_ELEMENTS = 24_000_000
"""Most XML elements (start tags) in all zip entries together.

Excel's 1,048,576 rows of ten numbers take 22 million (a row element, and a cell and a value
element per number). Such a sheet is read by calamine (Rust, via fastexcel) at about 0.3 µs an
element; the parts openpyxl parses in Python (3-17 µs an element) are bounded apart, by
`MAX_PARSED_ELEMENTS`.
"""
MAX_PARSED_ELEMENTS = 200_000
"""Most XML elements in the parts openpyxl parses in Python: all entries but the one worksheet
part that calamine reads, and that sheet itself when it does not qualify for calamine (see
`read_xlsx_cells`). At 3-17 µs an element this bounds openpyxl's work to about 4 s; it holds
about 7,000 rows of ten numbers, 9x the real workbook (22,858 elements)."""

MAX_STYLE_ELEMENTS = 25_000
"""Most XML elements in the styles part, where openpyxl spends up to 35 µs on each; the real
workbook's has 521, a workbook bloated by pasted formats a few thousand."""
MAX_CELL_CHARS = 32_767
"""Excel's limit on the characters in one cell; a longer shared string is refused, because
every cell naming it would hand the same huge text to each check."""
MAX_DATA_ROWS = EXCEL_MAX_ROWS
"""Most non-blank data rows accepted, in every format: as many as an Excel sheet holds."""
MAX_PARQUET_FOOTER_BYTES = 8 * 2**20
"""Largest Parquet footer parsed: Arrow holds about ten times its bytes in memory (a 62 MB
footer of 75,000 row groups took 600 MB); ten columns in ten row groups take a few kB."""
MAX_PARQUET_ROW_GROUPS = 10_000
"""Most Parquet row groups: each costs a few checks in Python; Arrow writes up to 1 Mi rows
in one, so a file of `MAX_DATA_ROWS` rows needs one."""
MAX_PARQUET_PAGES = 10_000
"""Most Parquet pages in the wanted columns, each header walked in Python; Arrow writes a page
per 20,000 values, so `MAX_DATA_ROWS` rows of ten columns take about 50."""
MAX_CELL_BY_CELL_RECORDS = 100_000
"""Most lines of a CSV file read record by record in Python (4 s here), when its wanted cells
are not all numbers; Arrow parses a file of numbers of `MAX_DATA_ROWS` rows in under a
second."""
MAX_BLANK_ROWS = 10_000
"""Most blank rows accepted between the header and the last data row (in runs or missing from
the file); blank rows after the last data row are never counted, whatever their number."""
MAX_CSV_RECORDS = MAX_DATA_ROWS + MAX_BLANK_ROWS
"""Most CSV records read below the header, blank or not: 60 MB of line breaks would otherwise
cost the csv module 60 million records. (A workbook's rows are bounded by `MAX_XML_ELEMENTS`,
so blank rows after its data stay free; a Parquet file's by `MAX_DATA_ROWS`.)"""
HEADER_SEARCH_ROWS = 10
"""The header row must lie within this many rows from the top of its sheet (or CSV)."""
MAX_HEADER_COLUMNS = 256
"""The header row must lie within columns A..IV; bounds the width of every row read."""
MAX_LISTED_ROWS = 5
"""Rows listed in an error message before "and N more"."""

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK"
_TEXT_SAMPLE_BYTES = 1_024
_SHOWN_NAMES = 20
_SHOWN_NUMBER_DIGITS = 15
_INFLATE_CHUNK_BYTES = 2**20
_ROW_TAG = f"{{{SHEET_MAIN_NS}}}row"
_SHEET_DATA_TAG = f"{{{SHEET_MAIN_NS}}}sheetData"
_PARQUET_MAGIC = b"PAR1"
_PARQUET_MAGIC_BYTES = len(_PARQUET_MAGIC)
_PARQUET_TRAILER_BYTES = 8  # the footer's length and the closing magic
_PARQUET_DATA_PAGES = (DATA_PAGE, DATA_PAGE_V2)
_PARQUET_CELL_TYPES = (
    pa.types.is_integer,
    pa.types.is_floating,
    pa.types.is_decimal,
    pa.types.is_boolean,
    pa.types.is_temporal,
    pa.types.is_null,
    pa.types.is_string,
    pa.types.is_large_string,
)
_BLANK_MEMO_MIN_CHARS = 64
SHOWN_CHARS = 32
"""Most characters of a file's own text (a cell, a header or sheet name) a message quotes.

Messages reach terminals, logs and the Prefect UI, also for a file whose content is not the
reader's to see (a URL given through the Prefect API): they name what is wrong with a few
characters of it, never echo more.
"""
LIBRARY_MESSAGE_CHARS = 120
"""Most characters quoted from a parser's own error, which may itself quote the file."""
_CSV_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_CSV_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


class WorkbookError(InputError):
    """A user's table file cannot be used; the message says where and what was expected.

    One class for every input problem (not a workbook, hostile content, missing or duplicated
    columns, bad cells) and every format, so callers such as the CLI catch one thing.
    """


@dataclass(frozen=True)
class NumericCells:
    """The wanted columns as float64 arrays, when every cell in them is a number.

    What `read_xlsx_cells` returns for a sheet read as numbers (`lib.core.xlsx_numbers`, or
    calamine through `lib.core.xlsx_columns`): no blank row inside the data, no text.
    Validation can then be vectorised.

    Attributes:
        source: the file read.
        sheet: the sheet holding the header.
        sha256: hex digest of the exact bytes that were parsed.
        columns: the wanted column names, in the order asked for.
        numbers: one float64 array per column, all of the same length.
        first_row: the row (or record) number a user sees for element 0.
        whole_as_int: whether a whole number is shown as an int, as openpyxl reads it from a
            workbook (Excel writes ``900``, not ``900.0``) and Arrow an integer column; a CSV
            cell reads as a float. One flag for all columns, or one per column.
    """

    source: Path
    sheet: str | None
    sha256: str
    columns: tuple[str, ...]
    numbers: tuple[np.ndarray, ...]
    first_row: int
    whole_as_int: bool | tuple[bool, ...] = True

    @property
    def location(self) -> str:
        """The file, and the sheet if any, as error messages name them."""
        return _location(self.source, self.sheet)

    @property
    def rows(self) -> list[tuple[object, ...]]:
        """The cells as `Cells.rows` holds them (for small tables: one tuple per row)."""
        return list(zip(*(column.tolist() for column in self.numbers), strict=True))

    def shows_int(self, index: int) -> bool:
        """Whether column `index` shows a whole number as an int (see `whole_as_int`)."""
        flags = self.whole_as_int
        return flags if isinstance(flags, bool) else flags[index]


@dataclass(frozen=True)
class Cells:
    """Raw values of the wanted columns, one tuple per data row, before any typing.

    Attributes:
        source: the file read.
        sheet: the sheet holding the header; ``None`` for CSV and Parquet.
        sha256: hex digest of the exact bytes that were parsed.
        columns: the wanted column names, in the order asked for.
        rows: data rows from the row below the header to the last row holding any wanted
            value; blank rows inside the data are kept as all-``None`` tuples.
        first_row: the number a user sees for ``rows[0]``: the Excel row, the CSV record
            (the header's record counts, as when a spreadsheet opens the file), or the
            1-based Parquet record.
    """

    source: Path
    sheet: str | None
    sha256: str
    columns: tuple[str, ...]
    rows: list[tuple[object, ...]]
    first_row: int

    @property
    def location(self) -> str:
        """The file, and the sheet if any, as error messages name them."""
        return _location(self.source, self.sheet)


def format_rows(items: Sequence[str], limit: int = MAX_LISTED_ROWS, total: int = 0) -> str:
    """Join the first `limit` items and summarise the rest as "and N more".

    `total`, when larger than ``len(items)``, says the items are the first of that many (so a
    caller need not render a message fragment for every bad row of a big table).
    """
    shown = ", ".join(items[:limit])
    hidden = max(len(items), total) - min(len(items), limit)
    return f"{shown} and {hidden:,} more" if hidden > 0 else shown


def read_xlsx_cells(path: Path, columns: Sequence[str]) -> Cells | NumericCells:
    """Read the wanted columns from the one sheet whose header row names them.

    The sheet is found by its header (any sheet, any name), trailing blank rows and columns
    are ignored, and formulas give their cached values (a never-calculated formula reads as
    blank). A sheet whose wanted cells are all numbers is read into arrays (`NumericCells`,
    up to Excel's 1,048,576 rows: its XML parsed directly by `lib.core.xlsx_numbers` when
    written plainly, else by calamine); any other by openpyxl, cell by cell, so
    that validation can name each blank, text or error value (`Cells`, up to
    `MAX_PARSED_ELEMENTS`).

    Raises:
        WorkbookError: the file is not an .xlsx workbook, is hostile (zip or XML entity
            bomb, more XML than `MAX_XML_ELEMENTS`, sheets sharing a part, a shared string
            longer than a cell holds), numbers rows out of order or past Excel's last, has
            more than `MAX_BLANK_ROWS` blank rows before its last data row, has no or several
            sheets with the header, misses or repeats a wanted column, or has no data rows.
        RuntimeError: openpyxl would parse XML without defusedxml.
    """
    _require_defused_xml()
    data = _read_bounded(path)
    scans = _check_archive(path, data)
    with _openpyxl_errors(path), warnings.catch_warnings():
        # openpyxl warns about styles and extensions it drops; they never change cell values.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl\.")
        workbook = _load_workbook(path, data, _largest_part(scans))
        try:
            sheet, header_row, header = _find_header_sheet(path, workbook, columns)
            where = _location(path, sheet.title)
            positions = _select_columns(header, columns, where, get_column_letter)
            scan = scans.get(sheet._worksheet_path, PartScan(plain=False))
            numbers = _read_numbers(path, data, sheet, header_row, positions, scan)
            if numbers is not None:
                return NumericCells(
                    path, sheet.title, _sha256(data), tuple(columns), numbers, header_row + 1
                )
            _check_cell_by_cell(where, scan)
            rows = _sheet_rows(sheet, where, max(positions) + 1)
            below = (numbered for numbered in rows if numbered[0] > header_row)
            kept = _collect_rows(below, positions, where, header_row + 1)
        finally:
            workbook.close()
    return Cells(path, sheet.title, _sha256(data), tuple(columns), kept, header_row + 1)


def _read_numbers(
    path: Path, data: bytes, sheet: Any, header_row: int, positions: Sequence[int], scan: PartScan
) -> tuple[np.ndarray, ...] | None:
    """The wanted columns as arrays when every cell from the header to the last data row
    is a number; ``None`` sends the sheet to openpyxl, cell by cell, to name what is not.

    A sheet of plain numbers is parsed from its XML directly (`lib.core.xlsx_numbers`: a
    fraction of calamine's time and memory); one that parser declines goes to calamine,
    unless it found a wanted cell that is certainly text or blank (calamine would decline).

    Before calamine runs: the sheet must be plain (`lib.core.xlsx_scan`: calamine holds the
    rectangle from A1 to the last cell in memory, 32 bytes a cell, so two cells in A1 and
    XFD1048576 would ask for 550 GB; plain bounds it to 540 MB), no cell may name a row past
    Excel's last, and row numbers must rise within Excel's range (the same checks and messages
    as `_check_row_number`; calamine would silently reorder rows). After: every row calamine
    found data in must be a row the XML numbers so (it places a cell by the cell's own
    reference, openpyxl by its row's), else openpyxl decides.
    """
    if not scan.plain:
        return None
    title = sheet.title
    where = _location(path, title)
    numbers = scan.numbers
    _check_row_numbers(numbers, where)
    book = sheet.parent
    dates = set(book._date_formats) | set(book._timedelta_formats)
    try:
        plain = read_part_numbers(data, sheet._worksheet_path, header_row, positions, dates)
    except NotNumbers:
        return None  # calamine would decline it too, after seconds on a large sheet
    if plain is not None:
        return plain  # rows within Excel's, so within MAX_DATA_ROWS
    columns = read_number_columns(data, title, header_row, positions)
    if columns is None:
        return None
    present = np.zeros(len(columns[0]) if columns else 0, dtype=bool)
    for column in columns:
        present |= column.is_valid().to_numpy(zero_copy_only=False)
    if not present.any():
        raise WorkbookError(
            f"{where}: expected at least one data row below the header. Received: none."
        )
    found = np.flatnonzero(present)
    rows = int(found[-1]) + 1
    if not np.isin(found + header_row + 1, numbers).all():
        return None
    if any(column.slice(0, rows).null_count for column in columns):
        return None  # blank cells: openpyxl tells blank rows from blank cells, and counts them
    if rows > MAX_DATA_ROWS:
        raise _too_many_rows(where, f"{MAX_DATA_ROWS:,} data rows (MAX_DATA_ROWS)")
    floats = tuple(as_floats(column, rows) for column in columns)
    if any(np.isnan(values).any() for values in floats):
        return None  # calamine reads the text 'nan' as a number; openpyxl does not
    return floats


def _check_row_numbers(numbers: np.ndarray, where: str) -> None:
    """`_check_row_number` over all rows at once, reporting the first row it would refuse."""
    previous = np.concatenate(([0], numbers[:-1]))
    bad = (numbers > EXCEL_MAX_ROWS) | (numbers <= previous)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        _check_row_number(int(numbers[first]), int(previous[first]), where)


def _check_csv_rows(where: str, rows: int) -> None:
    if not rows:
        raise WorkbookError(
            f"{where}: expected at least one data row below the header. Received: none."
        )
    if rows > MAX_DATA_ROWS:
        raise _too_many_rows(where, f"{MAX_DATA_ROWS:,} data rows (MAX_DATA_ROWS)")


def _check_record_by_record(where: str, data: bytes) -> None:
    """Refuse to read more than `MAX_CELL_BY_CELL_RECORDS` lines one by one in Python."""
    if data.count(b"\n") > MAX_CELL_BY_CELL_RECORDS:
        raise WorkbookError(
            f"{where} is refused as too costly to read record by record. Expected a number in "
            f"every wanted cell and complete records, one per line, in a CSV file of more than "
            f"{MAX_CELL_BY_CELL_RECORDS:,} lines (MAX_CELL_BY_CELL_RECORDS). Received: blanks, "
            f"text, short or multi-line records."
        )


def _check_cell_by_cell(where: str, scan: PartScan) -> None:
    """Refuse to hand openpyxl a sheet larger than `MAX_PARSED_ELEMENTS`."""
    if scan.elements > MAX_PARSED_ELEMENTS:
        raise WorkbookError(
            f"{where} is refused as too costly to read cell by cell. Expected a number in every "
            f"wanted cell of a sheet of more than {MAX_PARSED_ELEMENTS:,} XML elements "
            f"(MAX_PARSED_ELEMENTS), and no cell right of column "
            f"{get_column_letter(NARROW_COLUMNS)}. Received: blanks, text, dates, booleans or "
            f"error values in the wanted columns, or a wider sheet."
        )


def read_csv_cells(path: Path, columns: Sequence[str]) -> Cells | NumericCells:
    """Read the wanted columns of a UTF-8, comma-separated file with a header record.

    CSV has no types, so cells that spell a decimal number become floats (``nan``/``inf``
    spellings included, for the schema to reject); any other text stays text. A file whose
    every record below the header is complete and whose wanted cells all spell numbers is
    parsed by Arrow into arrays (`NumericCells`); any other record by record, so that
    validation can name each cell, up to `MAX_CELL_BY_CELL_RECORDS`.

    Raises:
        WorkbookError: the file is not UTF-8 CSV, misses or repeats a wanted column, has
            more records than `MAX_CSV_RECORDS` or blank ones than `MAX_BLANK_ROWS` before
            its last data row, has no data rows, or needs reading record by record and has
            more lines than `MAX_CELL_BY_CELL_RECORDS`.
    """
    data = _read_bounded(path)
    where = _location(path, None)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorkbookError(
            f"{where} is not a CSV file (expected UTF-8 text; received byte "
            f"0x{data[exc.start]:02x} at offset {exc.start})."
        ) from exc
    records = csv.reader(io.StringIO(text, newline=""))
    try:
        header_row, header = _find_csv_header(records, columns, where)
        positions = _select_columns(header, columns, where, _ordinal)
        # A file this long is refused either way (too many records, or too long to read record
        # by record if some span lines); saying so here spares Arrow 60 MB of blank lines.
        if data.count(b"\n") > header_row + MAX_CSV_RECORDS:
            raise _too_many_rows(
                where, f"{MAX_CSV_RECORDS:,} records, blank or not (MAX_CSV_RECORDS)"
            )
        if records.line_num == header_row:  # no record so far spans lines
            numbers = read_csv_numbers(data, header_row, len(header), positions)
            if numbers is not None:
                _check_csv_rows(where, len(numbers[0]))
                return NumericCells(
                    path, None, _sha256(data), tuple(columns), numbers, header_row + 1, False
                )
        _check_record_by_record(where, data)
        numbered = enumerate(_bounded_records(records, where), start=header_row + 1)
        kept = _collect_rows(numbered, positions, where, header_row + 1, _parse_csv_cell)
    except csv.Error as exc:
        raise WorkbookError(
            f"{where} is not a valid CSV file (record {records.line_num}: {_said(exc)})."
        ) from exc
    return Cells(path, None, _sha256(data), tuple(columns), kept, header_row + 1)


def read_parquet_cells(path: Path, columns: Sequence[str]) -> Cells | NumericCells:
    """Read the wanted columns of a Parquet file; rows are numbered from 1.

    The footer is only a summary that Arrow does not hold pages to, so before Arrow decodes
    anything the footer's row counts and chunk ranges are checked against each other and the
    file, then every page header of the wanted columns is walked (`lib.core.parquet_pages`): what
    Arrow will allocate is what the pages declare, bounded by `MAX_UNCOMPRESSED_BYTES` and
    the row count. Text stays dictionary-encoded until each distinct word becomes one Python
    string that its rows share, so a short dictionary cannot expand into gigabytes.

    Raises:
        WorkbookError: the file is not Parquet, is damaged or declares more than the limits,
            misses or repeats a wanted column, holds one that is not one number, date,
            boolean or text per row, or has no rows.
    """
    data = _read_bounded(path)
    where = _location(path, None)
    parquet = _open_parquet(where, data)
    _select_columns(parquet.schema_arrow.names, columns, where, _ordinal)
    _check_parquet_types(where, parquet.schema_arrow, columns)
    _check_parquet_footer(where, parquet.metadata)
    chunks = _parquet_chunks(parquet, columns)
    _check_parquet_chunks(
        where, chunks, len(data) - _PARQUET_TRAILER_BYTES - parquet.metadata.serialized_size
    )
    _check_parquet_pages(where, data, chunks)
    table = _read_parquet(where, data, parquet.metadata, columns)
    numbers = _parquet_numbers(table)
    if numbers is not None:
        _check_csv_rows(where, table.num_rows)
        integers = tuple(pa.types.is_integer(kind) for kind in table.schema.types)
        return NumericCells(path, None, _sha256(data), tuple(columns), numbers, 1, integers)
    if table.num_rows > MAX_CELL_BY_CELL_RECORDS:
        raise WorkbookError(
            f"{where} is refused as too costly to read cell by cell. Expected a number in every "
            f"wanted cell of a Parquet file of more than {MAX_CELL_BY_CELL_RECORDS:,} rows "
            f"(MAX_CELL_BY_CELL_RECORDS). Received: nulls, text, dates or booleans."
        )
    values = [_python_values(table.column(index)) for index in range(table.num_columns)]
    numbered = enumerate(zip(*values, strict=True), start=1)
    kept = _collect_rows(numbered, range(len(columns)), where, 1)
    return Cells(path, None, _sha256(data), tuple(columns), kept, 1)


def shown(value: object, *, quote: bool = True, limit: int = SHOWN_CHARS) -> str:
    """`value` as a message may quote it: short, and escaped so no control character shows.

    At most `limit` characters ("..." marks a cut), escaped as a repr is, so a terminal escape
    sequence in a file never reaches a screen; `quote=False` leaves out the repr's quotes.
    """
    text = str(value)
    escaped = repr(text[:limit])
    if not quote:
        escaped = escaped[1:-1]
    return escaped + ("..." if len(text) > limit else "")


def _said(error: BaseException) -> str:
    """What a parser's error said, cut to `LIBRARY_MESSAGE_CHARS`: it may quote the file."""
    return shown(error, quote=False, limit=LIBRARY_MESSAGE_CHARS)


def _location(source: Path, sheet: str | None) -> str:
    return f"'{source}', sheet {shown(sheet)}" if sheet is not None else f"'{source}'"


def _ordinal(index: int) -> str:
    return f"#{index}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _require_defused_xml() -> None:
    if not openpyxl.xml.DEFUSEDXML:
        raise RuntimeError(
            "Expected openpyxl to parse workbook XML with defusedxml (install defusedxml and "
            "leave OPENPYXL_DEFUSEDXML unset). Received: openpyxl.xml.DEFUSEDXML=False"
        )


def _read_bounded(path: Path) -> bytes:
    """Read the whole file once, refusing more than `MAX_FILE_BYTES` without reading it all."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise WorkbookError(
            f"'{path}' is too large to read as a table. Expected at most {MAX_FILE_BYTES:,} "
            f"bytes (MAX_FILE_BYTES). Received: a larger file."
        )
    return data


def _describe_bytes(data: bytes) -> str:
    """Say what a file that is not the expected format looks like instead."""
    if not data:
        return "an empty file (0 bytes)"
    if data.startswith(_OLE2_MAGIC):
        return (
            "an OLE2 compound file: a legacy .xls or password-protected workbook; "
            "save it as an unprotected .xlsx"
        )
    if data.startswith(_ZIP_MAGIC):
        return f"a truncated or damaged zip archive ({len(data):,} bytes)"
    text = _text_sample(data)
    if text is not None:
        first_line = text.splitlines()[0] if text.strip() else text
        return f"text starting {shown(first_line)} (a CSV file renamed?)"
    return f"{len(data):,} bytes starting {data[:8].hex(' ')}"


def _text_sample(data: bytes) -> str | None:
    sample = data[:_TEXT_SAMPLE_BYTES]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sample's end is still text.
        if exc.start < len(sample) - 3:
            return None
        text = sample[: exc.start].decode("utf-8")
    if all(char.isprintable() or char in "\r\n\t" for char in text):
        return text
    return None


def _not_xlsx(path: Path, expected: str, received: str) -> WorkbookError:
    return WorkbookError(
        f"'{path}' is not an Excel .xlsx workbook (expected {expected}; received {received})."
    )


def _check_archive(path: Path, data: bytes) -> dict[str, PartScan]:
    """Refuse non-zips and zip bombs from the central directory, then count XML elements.

    The directory checks inflate nothing. Only a workbook that passes them is inflated, once
    and in chunks, to count its elements: parse time grows with elements, not bytes. Returns
    what each entry holds (`lib.core.xlsx_scan`).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _not_xlsx(path, "a zip archive", _describe_bytes(data)) from exc
    with archive:
        entries = archive.infolist()
        _check_declared_sizes(path, entries)
        return _check_element_count(path, archive, entries)


def _check_declared_sizes(path: Path, entries: list[zipfile.ZipInfo]) -> None:
    refused = f"'{path}' is refused as a possible zip bomb. Expected"
    if len(entries) > MAX_ARCHIVE_ENTRIES:
        raise WorkbookError(
            f"{refused} at most {MAX_ARCHIVE_ENTRIES:,} zip entries (MAX_ARCHIVE_ENTRIES). "
            f"Received: {len(entries):,} entries."
        )
    total = sum(entry.file_size for entry in entries)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise WorkbookError(
            f"{refused} entries declaring at most {MAX_UNCOMPRESSED_BYTES:,} bytes "
            f"uncompressed in total (MAX_UNCOMPRESSED_BYTES). Received: {total:,} bytes."
        )
    for entry in entries:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > RATIO_CHECK_MIN_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise WorkbookError(
                f"{refused} entries expanding at most {MAX_COMPRESSION_RATIO}x "
                f"(MAX_COMPRESSION_RATIO). Received: entry {shown(entry.filename)} expands "
                f"{ratio:,.0f}x ({entry.compress_size:,} -> {entry.file_size:,} bytes)."
            )


def _check_element_count(
    path: Path, archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo]
) -> dict[str, PartScan]:
    """Every entry counts, whatever its name: openpyxl parses whichever parts the package
    names, so a worksheet may hide under any name (styles alone have a fixed one). One entry
    may hold more than `MAX_PARSED_ELEMENTS`, if plain: the worksheet calamine reads."""
    total = 0
    scans: dict[str, PartScan] = {}
    for entry in entries:
        styles = entry.filename == ARC_STYLE
        part_limit = MAX_STYLE_ELEMENTS if styles else MAX_XML_ELEMENTS
        scan = _scan_entry(path, archive, entry, min(part_limit, MAX_XML_ELEMENTS - total))
        scans[entry.filename] = scan
        count = scan.elements
        total += count
        refused = f"'{path}' is refused as too costly to parse. Expected at most"
        if styles and count > MAX_STYLE_ELEMENTS:
            raise WorkbookError(
                f"{refused} {MAX_STYLE_ELEMENTS:,} XML elements in its styles part "
                f"(MAX_STYLE_ELEMENTS). Received: more in entry {shown(entry.filename)}."
            )
        if total > MAX_XML_ELEMENTS:
            raise WorkbookError(
                f"{refused} {MAX_XML_ELEMENTS:,} XML elements in all parts together "
                f"(MAX_XML_ELEMENTS, about 1.1 million rows of ten numbers). Received: more, "
                f"the limit passed in entry {shown(entry.filename)}."
            )
    _check_parsed_elements(path, scans)
    return scans


def _largest_part(scans: dict[str, PartScan]) -> str | None:
    """The one entry allowed more than `MAX_PARSED_ELEMENTS` elements, if any holds more."""
    name = max(scans, key=lambda entry: scans[entry].elements, default=None)
    return name if name is not None and scans[name].elements > MAX_PARSED_ELEMENTS else None


def _check_parsed_elements(path: Path, scans: dict[str, PartScan]) -> None:
    """What openpyxl may parse in Python: every part but the largest, and that one only if
    calamine can read it (`PartScan.plain`); `_GuardedArchive` keeps openpyxl out of it."""
    refused = f"'{path}' is refused as too costly to parse. Expected at most"
    largest = _largest_part(scans)
    others = sum(scan.elements for name, scan in scans.items() if name != largest)
    if others > MAX_PARSED_ELEMENTS:
        raise WorkbookError(
            f"{refused} {MAX_PARSED_ELEMENTS:,} XML elements outside its largest part "
            f"(MAX_PARSED_ELEMENTS). Received: {others:,}."
        )
    if largest is not None and not scans[largest].plain:
        raise WorkbookError(
            f"{refused} {MAX_PARSED_ELEMENTS:,} XML elements in a part whose rows and cells do "
            f"not name their positions first, as spreadsheets write them (MAX_PARSED_ELEMENTS). "
            f"Received: more in entry {shown(largest)}."
        )


def _scan_entry(
    path: Path, archive: zipfile.ZipFile, entry: zipfile.ZipInfo, limit: int
) -> PartScan:
    """Count the start tags in one entry, stopping once past `limit` (`lib.core.xlsx_scan`).

    Every element, comment or CDATA section opens with ``<`` and an end tag with ``</``, so
    this bounds the elements any parser meets without parsing.
    """
    try:
        with inflated_chunks(archive, entry, _INFLATE_CHUNK_BYTES) as chunks:
            return scan_chunks(chunks, limit)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise _not_xlsx(
            path,
            "a zip archive whose entries inflate intact",
            f"entry {shown(entry.filename)} that does not: {type(exc).__name__}: {_said(exc)}",
        ) from exc
    except RuntimeError as exc:  # zipfile's word for an encrypted entry
        raise _not_xlsx(
            path,
            "an unencrypted zip archive",
            f"entry {shown(entry.filename)}: {_said(exc)}",
        ) from exc


@dataclass(frozen=True)
class _ParquetChunk:
    """One wanted column in one row group, as the footer declares it."""

    column: str
    group: int
    rows: int
    values: int
    start: int
    compressed: int
    uncompressed: int


def _open_parquet(where: str, data: bytes) -> pq.ParquetFile:
    """Parse the footer, unless its length (in the file's last 8 bytes) is over the limit."""
    footer_bytes = int.from_bytes(data[-_PARQUET_TRAILER_BYTES:-_PARQUET_MAGIC_BYTES], "little")
    if data.endswith(_PARQUET_MAGIC) and footer_bytes > MAX_PARQUET_FOOTER_BYTES:
        raise WorkbookError(
            f"{where} is refused: expected a Parquet footer of at most "
            f"{MAX_PARQUET_FOOTER_BYTES:,} bytes (MAX_PARQUET_FOOTER_BYTES). Received: "
            f"{footer_bytes:,} bytes."
        )
    try:
        return pq.ParquetFile(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise WorkbookError(
            f"{where} is not a Parquet file (expected the PAR1 format; "
            f"received {_describe_bytes(data)})."
        ) from exc


def _read_parquet(
    where: str, data: bytes, metadata: pq.FileMetaData, columns: Sequence[str]
) -> pa.Table:
    """Decode the checked columns, text kept dictionary-encoded (see `_python_values`).

    Reopened with the footer already parsed and checked: Arrow takes the dictionary option
    only when opening, and refuses it for a name that is not a flat column.
    """
    try:
        parquet = pq.ParquetFile(
            pa.BufferReader(data), metadata=metadata, read_dictionary=list(columns)
        )
        return parquet.read(columns=list(columns), use_threads=False)
    except (pa.ArrowException, OSError) as exc:
        raise WorkbookError(f"{where} is a damaged Parquet file ({_said(exc)}).") from exc


def _is_cell_type(kind: pa.DataType) -> bool:
    """One bounded value per row: a number, date, boolean, null or text (any dictionary)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return any(check(kind) for check in _PARQUET_CELL_TYPES)


def _check_parquet_types(where: str, schema: pa.Schema, columns: Sequence[str]) -> None:
    """Refuse nested and binary columns: a list's value count is not bounded by the row count,
    and a fixed-size binary's width comes from the file."""
    for name in columns:
        kind = schema.field(name).type
        if not _is_cell_type(kind):
            raise WorkbookError(
                f"{where}: expected column {name} to hold one number, date, boolean or text "
                f"per row. Received: {shown(kind, quote=False)}."
            )


def _check_parquet_footer(where: str, metadata: pq.FileMetaData) -> None:
    """The footer's counts, before anything is allocated from them."""
    if metadata.num_row_groups > MAX_PARQUET_ROW_GROUPS:
        raise WorkbookError(
            f"{where} is refused: expected at most {MAX_PARQUET_ROW_GROUPS:,} Parquet row "
            f"groups (MAX_PARQUET_ROW_GROUPS). Received: {metadata.num_row_groups:,}."
        )
    if metadata.num_rows > MAX_DATA_ROWS:
        raise WorkbookError(
            f"{where} has too many rows. Expected at most {MAX_DATA_ROWS:,} (MAX_DATA_ROWS). "
            f"Received: {_show_number(metadata.num_rows)} rows."
        )
    grouped = [metadata.row_group(group).num_rows for group in range(metadata.num_row_groups)]
    if metadata.num_rows < 0 or min(grouped, default=0) < 0 or sum(grouped) != metadata.num_rows:
        raise WorkbookError(
            f"{where} is a damaged Parquet file: expected its footer's row count to be the sum "
            f"of its row groups'. Received: {_show_number(metadata.num_rows)} rows, row groups "
            f"of {format_rows([_show_number(rows) for rows in grouped])} rows."
        )


def _parquet_chunks(parquet: pq.ParquetFile, columns: Sequence[str]) -> list[_ParquetChunk]:
    metadata = parquet.metadata
    leaves = {name: parquet.reader.column_name_idx(name) for name in columns}
    chunks = []
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for name, leaf in leaves.items():
            chunk = row_group.column(leaf)
            start = chunk.data_page_offset
            # As Arrow reads it: the dictionary page, when there is one, comes first.
            if chunk.has_dictionary_page and 0 < chunk.dictionary_page_offset < start:
                start = chunk.dictionary_page_offset
            chunks.append(
                _ParquetChunk(
                    name,
                    group,
                    row_group.num_rows,
                    chunk.num_values,
                    start,
                    chunk.total_compressed_size,
                    chunk.total_uncompressed_size,
                )
            )
    return chunks


def _check_parquet_chunks(where: str, chunks: Sequence[_ParquetChunk], data_end: int) -> None:
    """Each wanted chunk lies inside the file's data, and declares one value per row."""
    for chunk in chunks:
        at = f"column {chunk.column}, row group {chunk.group}"
        end = chunk.start + chunk.compressed
        if chunk.start < _PARQUET_MAGIC_BYTES or chunk.compressed < 0 or end > data_end:
            raise WorkbookError(
                f"{where} is a damaged Parquet file: expected the {at} chunk within the data "
                f"(bytes {_PARQUET_MAGIC_BYTES:,} to {data_end:,}). Received: bytes "
                f"{_show_number(chunk.start)} to {_show_number(end)}."
            )
        if chunk.values != chunk.rows:
            raise WorkbookError(
                f"{where} is a damaged Parquet file: expected the {at} chunk to declare one "
                f"value per row ({_show_number(chunk.rows)}). Received: "
                f"{_show_number(chunk.values)} values."
            )
    declared = sum(chunk.uncompressed for chunk in chunks)
    if declared > MAX_UNCOMPRESSED_BYTES:
        raise WorkbookError(
            f"{where} is refused: expected Parquet column chunks declaring at most "
            f"{MAX_UNCOMPRESSED_BYTES:,} bytes uncompressed (MAX_UNCOMPRESSED_BYTES). "
            f"Received: {_show_number(declared)} bytes."
        )


def _check_parquet_pages(where: str, data: bytes, chunks: Sequence[_ParquetChunk]) -> None:
    """What Arrow will allocate, from the page headers themselves (the footer may lie)."""
    pages = inflated = 0
    for chunk in chunks:
        at = f"column {chunk.column}, row group {chunk.group}"
        values = 0
        try:
            for page in read_page_headers(data, chunk.start, chunk.start + chunk.compressed):
                pages += 1
                inflated += page.uncompressed_size
                values += page.num_values if page.kind in _PARQUET_DATA_PAGES else 0
                _check_page_totals(where, at, pages, inflated)
        except PageHeaderError as exc:
            raise WorkbookError(f"{where} is a damaged Parquet file ({at}: {exc}).") from exc
        if values != chunk.rows:
            raise WorkbookError(
                f"{where} is a damaged Parquet file: expected the {at} pages to hold one value "
                f"per row ({_show_number(chunk.rows)}). Received: {_show_number(values)} values."
            )


def _check_page_totals(where: str, at: str, pages: int, inflated: int) -> None:
    if pages > MAX_PARQUET_PAGES:
        raise WorkbookError(
            f"{where} is refused: expected at most {MAX_PARQUET_PAGES:,} pages in the wanted "
            f"columns (MAX_PARQUET_PAGES). Received: more, by {at}."
        )
    if inflated > MAX_UNCOMPRESSED_BYTES:
        raise WorkbookError(
            f"{where} is refused: expected pages declaring at most {MAX_UNCOMPRESSED_BYTES:,} "
            f"bytes uncompressed in the wanted columns (MAX_UNCOMPRESSED_BYTES). Received: "
            f"more, by {at}."
        )


def _parquet_numbers(table: pa.Table) -> tuple[np.ndarray, ...] | None:
    """The columns as float64 arrays, if all are integer or floating and none holds a null."""
    numeric = all(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) for kind in table.schema.types
    )
    if not numeric or any(column.null_count for column in table.columns):
        return None
    return tuple(column.cast(pa.float64()).combine_chunks().to_numpy() for column in table.columns)


def _python_values(column: pa.ChunkedArray) -> list[object]:
    """The column as Python values; each dictionary word becomes one string its rows share."""
    values: list[object] = []
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            words = chunk.dictionary.to_pylist()
            indices = chunk.indices.to_pylist()
            values.extend(None if index is None else words[index] for index in indices)
        else:
            values.extend(chunk.to_pylist())
    return values


def _find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of `kind` in the chain (openpyxl re-raises parse errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextlib.contextmanager
def _openpyxl_errors(path: Path) -> Iterator[None]:
    """Turn whatever openpyxl raises on hostile or malformed parts into a `WorkbookError`."""
    try:
        yield
    except WorkbookError:
        raise
    except Exception as exc:  # openpyxl surfaces malformed parts as many exception types
        ours = _find_cause(exc, WorkbookError)
        if ours is not None:  # raised by `_GuardedExcelReader`, wrapped by openpyxl's read()
            raise ours from None
        defused = _find_cause(exc, DefusedXmlException)
        if defused is not None:
            raise WorkbookError(
                f"'{path}' is refused: its XML declares entities or external references "
                f"({_said(defused)}). Expected plain Office Open XML (Excel never writes "
                "entity declarations; expanding them is the 'billion laughs' attack)."
            ) from exc
        raise _not_xlsx(
            path,
            "a zip archive holding a readable Office Open XML spreadsheet",
            f"a part openpyxl could not read: {type(exc).__name__}: {_said(exc)}",
        ) from exc


def _header_name(value: object) -> str:
    return "" if value is None else str(value).strip()


def _find_header_sheet(
    path: Path, workbook: Any, columns: Sequence[str]
) -> tuple[Any, int, tuple[object, ...]]:
    """The one sheet with a row naming any wanted column near its top, that row's number and cells.

    Any wanted name marks the header, so a header missing a column is reported as that
    missing column rather than as "no sheet found".
    """
    wanted = set(columns)
    found: list[tuple[Any, int, tuple[object, ...]]] = []
    for sheet in workbook.worksheets:
        rows = _sheet_rows(sheet, _location(path, sheet.title), MAX_HEADER_COLUMNS)
        for number, row in rows:
            if number > HEADER_SEARCH_ROWS:
                break
            if wanted & {_header_name(value) for value in row}:
                found.append((sheet, number, row))
                break
        rows.close()  # closes the sheet's zip entry now, not when garbage-collected
    if len(found) == 1:
        return found[0]
    titles = [shown(sheet.title) for sheet in workbook.worksheets]
    holding = [shown(sheet.title) for sheet, _, _ in found]
    received = (
        f"headers on sheets {', '.join(holding)}; keep one"
        if found
        else f"sheets {format_rows(titles)} without one (empty or other headers)"
    )
    raise WorkbookError(
        f"'{path}': expected exactly one sheet with a header row naming {', '.join(columns)} "
        f"within its first {HEADER_SEARCH_ROWS} rows. Received: {received}."
    )


class _GuardedExcelReader(ExcelReader):
    """openpyxl's own loader (the one `openpyxl.load_workbook` runs), checked between steps.

    The checks sit where openpyxl has resolved the package but not yet parsed a worksheet:

    - a shared string longer than a cell can hold is refused: cells share strings by index,
      so one huge string could reach every cell and every check that reads them;
    - two sheets naming the same worksheet part are refused: read-only openpyxl parses each
      sheet's part to size it and the header search reads each again, so a part repeated
      under many sheets would multiply the parse work that `MAX_XML_ELEMENTS` bounds.
    """

    def __init__(self, path: Path, data: bytes, deferred: str | None) -> None:
        super().__init__(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
        self.archive.close()
        self.archive: zipfile.ZipFile = _GuardedArchive(path, io.BytesIO(data), deferred)
        self.source_path = path

    def read_strings(self) -> None:
        super().read_strings()
        _check_shared_strings(self.source_path, self.shared_strings)

    def read_worksheets(self) -> None:
        """openpyxl's read-only branch of `read_worksheets`, with `_UnsizedWorksheet`."""
        sheets = list(self.parser.find_sheets())
        _check_sheet_parts(self.source_path, [rel.target for _, rel in sheets])
        for sheet, rel in sheets:
            if rel.target not in self.valid_files:
                continue
            if "chartsheet" in rel.Type:
                self.read_chartsheet(sheet, rel)
                continue
            worksheet = _UnsizedWorksheet(self.wb, sheet.name, rel.target, self.shared_strings)
            worksheet.sheet_state = sheet.state
            self.wb._sheets.append(worksheet)


class _UnsizedWorksheet(ReadOnlyWorksheet):
    """A read-only worksheet that does not look for its declared dimension when created.

    openpyxl looks for ``<dimension>`` by parsing the sheet until it finds one or the end of
    ``<sheetData>``, so a sheet without one (many writers leave it out) would be parsed whole
    in Python just to be opened. Nothing here reads the dimension: `_sheet_rows` reads the
    rows the XML holds.
    """

    def _get_size(self) -> None:
        return None


class _GuardedArchive(zipfile.ZipFile):
    """The workbook's zip, refusing openpyxl the one part larger than `MAX_PARSED_ELEMENTS`.

    That part may only be a worksheet that calamine reads; openpyxl reads its first rows
    through `open_sheet` (the header search, bounded by `_sheet_rows`), never all of it.
    """

    def __init__(self, path: Path, file: io.BytesIO, deferred: str | None) -> None:
        super().__init__(file)
        self.source_path = path
        self.deferred = deferred

    def open(self, name: Any, mode: Any = "r", pwd: Any = None, **kwargs: Any) -> Any:
        filename = name.filename if isinstance(name, zipfile.ZipInfo) else name
        if filename == self.deferred:
            raise WorkbookError(
                f"'{self.source_path}' is refused as too costly to parse. Expected at most "
                f"{MAX_PARSED_ELEMENTS:,} XML elements in any part but a worksheet "
                f"(MAX_PARSED_ELEMENTS). Received: more in entry {shown(filename)}."
            )
        return super().open(name, mode, pwd, **kwargs)

    def open_sheet(self, name: str) -> Any:
        """Open a worksheet part, the deferred one included."""
        return super().open(name)


def _load_workbook(path: Path, data: bytes, deferred: str | None = None) -> Any:
    reader = _GuardedExcelReader(path, data, deferred)
    reader.read()
    return reader.wb


def _check_shared_strings(path: Path, strings: Sequence[object]) -> None:
    for index, text in enumerate(strings):
        if isinstance(text, str) and len(text) > MAX_CELL_CHARS:
            raise WorkbookError(
                f"'{path}': expected cell texts of at most {MAX_CELL_CHARS:,} characters "
                f"(MAX_CELL_CHARS, Excel's limit). Received: shared string #{index:,} of "
                f"{len(text):,} characters."
            )


def _check_sheet_parts(path: Path, parts: Sequence[str]) -> None:
    repeated = [(part, times) for part, times in Counter(parts).items() if times > 1]
    if repeated:
        part, times = repeated[0]
        raise WorkbookError(
            f"'{path}': expected every sheet to have its own worksheet part. Received: part "
            f"{shown(part)} named by {times:,} sheets."
        )


def _sheet_rows(
    sheet: Any, where: str, width: int
) -> Generator[tuple[int, tuple[object, ...]], None, None]:
    """The rows a sheet's XML holds, numbered as Excel numbers them, cut to `width` columns.

    openpyxl's public `iter_rows` yields an empty row for each row number missing from the
    XML, so a 5 kB sheet jumping from row 2 to row 1,000,000,000 costs a billion iterations;
    and it goes on to build objects for everything after the rows (merged ranges, links,
    validations: 10-25 µs a tag). Here openpyxl's own row parser (private, hence the
    underscores) types the cells of the rows present, numbered; `_collect_rows` decides what
    a gap means, and reading ends with ``</sheetData>``. Numbers must rise within Excel's
    range, as spreadsheets write them (`iter_rows` silently drops a row out of order).
    """
    book = sheet.parent
    previous = 0
    elements = 0
    with book._archive.open_sheet(sheet._worksheet_path) as source:
        parser = WorkSheetParser(
            source,
            sheet._shared_strings,
            data_only=True,
            epoch=book.epoch,
            date_formats=book._date_formats,
            timedelta_formats=book._timedelta_formats,
        )
        for _, element in openpyxl.xml.functions.iterparse(source):
            elements += 1
            if elements > MAX_PARSED_ELEMENTS:
                raise WorkbookError(
                    f"{where} is refused as too costly to parse. Expected at most "
                    f"{MAX_PARSED_ELEMENTS:,} XML elements before the rows read "
                    f"(MAX_PARSED_ELEMENTS). Received: more."
                )
            if element.tag == _SHEET_DATA_TAG:
                return
            if element.tag == _ROW_TAG:
                number, cells = parser.parse_row(element)
                element.clear()
                _check_row_number(number, previous, where)
                previous = number
                yield number, _row_values(cells, width)


def _row_values(cells: Sequence[dict[str, Any]], width: int) -> tuple[object, ...]:
    if not cells:
        return ()  # an empty row element, as formatted blank rows are written
    values: list[object] = [None] * width
    for cell in cells:
        column = cell["column"]
        if 1 <= column <= width:
            values[column - 1] = cell["value"]
    return tuple(values)


def _check_row_number(number: int, previous: int, where: str) -> None:
    if number > EXCEL_MAX_ROWS:
        raise WorkbookError(
            f"{where}: expected row numbers up to {EXCEL_MAX_ROWS:,} (Excel's last row). "
            f"Received: row {_show_number(number)}."
        )
    if number <= previous:
        after = f"after row {previous:,}" if previous else "as the first row"
        raise WorkbookError(
            f"{where}: expected row numbers rising from 1, as spreadsheets write them. "
            f"Received: row {_show_number(number)} {after}."
        )


def _show_number(number: int) -> str:
    return f"{number:,}" if abs(number) < 10**_SHOWN_NUMBER_DIGITS else f"{number:.3e}"


def _find_csv_header(
    records: Iterator[list[str]], columns: Sequence[str], where: str
) -> tuple[int, list[str]]:
    """The first non-blank record is the header; returns its 1-based number and cells."""
    for number, record in enumerate(records, start=1):
        if any(cell.strip() for cell in record):
            return number, record
        if number >= HEADER_SEARCH_ROWS:
            break
    raise WorkbookError(
        f"{where}: expected a header record naming {', '.join(columns)} within the first "
        f"{HEADER_SEARCH_ROWS} records. Received: an empty file or only blank records."
    )


def _select_columns(
    header: Sequence[object],
    columns: Sequence[str],
    where: str,
    position_name: Callable[[int], str],
) -> tuple[int, ...]:
    """Positions of the wanted columns, each required exactly once in the header."""
    names = [_header_name(value) for value in header]
    places = {name: [i for i, seen in enumerate(names) if seen == name] for name in columns}
    missing = [name for name, found in places.items() if not found]
    repeated = {name: found for name, found in places.items() if len(found) > 1}
    if not missing and not repeated:
        return tuple(found[0] for found in places.values())
    problems = []
    if missing:
        present = [shown(name, quote=False) for name in names if name]
        problems.append(
            f"missing {', '.join(missing)} (header holds: "
            f"{format_rows(present, _SHOWN_NAMES) or 'nothing'})"
        )
    for name, found in repeated.items():
        problems.append(
            f"{name} repeated in columns {' and '.join(position_name(i + 1) for i in found)}"
        )
    raise WorkbookError(
        f"{where}: expected each of the columns {', '.join(columns)} exactly once in the "
        f"header. Received: {'; '.join(problems)}."
    )


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class _BlankCheck:
    """`_is_blank` that decides each long text once.

    Shared strings and Parquet dictionaries hand one text object to many cells: stripping an
    18 kB file's one 32,000-space word again for each of its 2,000,000 cells took a minute. A
    dict keyed by the text costs one hash per object (Python caches it on the string) and an
    identity comparison per cell.
    """

    def __init__(self) -> None:
        self.decided: dict[str, bool] = {}

    def __call__(self, value: object) -> bool:
        if not isinstance(value, str) or len(value) < _BLANK_MEMO_MIN_CHARS:
            return _is_blank(value)
        blank = self.decided.get(value)
        if blank is None:
            blank = self.decided[value] = not value.strip()
        return blank


def _collect_rows(
    rows: Iterable[tuple[int, Sequence[object]]],
    positions: Sequence[int],
    where: str,
    first_row: int,
    convert: Callable[[object], object] | None = None,
) -> list[tuple[object, ...]]:
    """Keep the wanted cells of each numbered row from `first_row` to the last data row.

    Blank rows become one shared all-``None`` tuple each, and only once a data row follows
    them, whether the file holds them or skips their numbers (a sheet may jump from row 9 to
    row 900). So trailing blank rows cost nothing and a gap costs list slots, never a loop over
    rows the file does not hold; `MAX_BLANK_ROWS` bounds those slots, `MAX_DATA_ROWS` the
    data.
    """
    blank = (None,) * len(positions)
    is_blank = _BlankCheck()
    kept: list[tuple[object, ...]] = []
    blanks = 0
    for number, row in rows:
        if not row:
            continue
        values = _wanted_values(row, positions, is_blank)
        if values == blank:
            continue
        gap = number - first_row - len(kept)
        if gap:
            blanks += gap
            _check_blank_rows(where, blanks, number, gap)
            kept.extend(itertools.repeat(blank, gap))
        kept.append(values if convert is None else _convert(values, convert))
        if len(kept) - blanks > MAX_DATA_ROWS:
            raise _too_many_rows(where, f"{MAX_DATA_ROWS:,} data rows (MAX_DATA_ROWS)")
    if not kept:
        raise WorkbookError(
            f"{where}: expected at least one data row below the header. Received: none."
        )
    return kept


def _bounded_records(records: Iterator[list[str]], where: str) -> Iterator[list[str]]:
    for count, record in enumerate(records, start=1):
        if count > MAX_CSV_RECORDS:
            raise _too_many_rows(
                where, f"{MAX_CSV_RECORDS:,} records, blank or not (MAX_CSV_RECORDS)"
            )
        yield record


def _wanted_values(
    row: Sequence[object], positions: Sequence[int], is_blank: Callable[[object], bool]
) -> tuple[object, ...]:
    return tuple(
        None if index >= len(row) or is_blank(row[index]) else row[index] for index in positions
    )


def _convert(values: tuple[object, ...], convert: Callable[[object], object]) -> tuple[object, ...]:
    return tuple(None if value is None else convert(value) for value in values)


def _too_many_rows(where: str, limit: str) -> WorkbookError:
    return WorkbookError(
        f"{where} has too many rows below the header. Expected at most {limit}. Received: more."
    )


def _check_blank_rows(where: str, blanks: int, number: int, gap: int) -> None:
    if blanks > MAX_BLANK_ROWS:
        raise WorkbookError(
            f"{where}: expected at most {MAX_BLANK_ROWS:,} blank rows between the header and "
            f"the last data row (MAX_BLANK_ROWS). Received: {blanks:,}, the last "
            f"{gap:,} in rows {number - gap:,} to {number - 1:,} before data in row {number:,}."
        )


def _parse_csv_cell(value: object) -> object:
    text = str(value).strip()
    if _CSV_NUMBER.fullmatch(text) or _CSV_NON_FINITE.fullmatch(text):
        return float(text)  # "1e999" gives inf, which the schema rejects as non-finite
    return value
