"""User table files (.xlsx, .csv, .parquet) -> raw cells of the wanted columns, read safely.

Every table a user hands trainflow passes through here first, so this module owns the
defences and nothing else: each file is read once into memory under a size limit (the bytes
hashed are the bytes parsed), a workbook's zip directory is checked against named limits
before anything is decompressed, its XML is parsed by defusedxml (openpyxl uses it whenever it
is importable; `read_xlsx_cells` refuses to run otherwise), and every failure is one
`WorkbookError` naming the file, the sheet, the column and the rows. Typing and range checks
belong to the schema (`lib.energy.table`); here a cell is whatever the file holds.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import openpyxl.xml
import pyarrow as pa
import pyarrow.parquet as pq
from defusedxml import DefusedXmlException
from openpyxl.utils import get_column_letter

from lib.core.errors import InputError

MAX_FILE_BYTES = 64 * 2**20
"""Largest input file read; the real workbook is 76 kB, a CSV of `MAX_DATA_ROWS` about 15 MB."""
MAX_ARCHIVE_ENTRIES = 1_000
"""Most zip entries in a workbook; Excel writes a few dozen."""
MAX_UNCOMPRESSED_BYTES = 200 * 2**20
"""Largest total the zip entries (or Parquet column chunks) may declare once decompressed.

Python's `zipfile` stops every entry at its declared size (a lying header ends in a CRC
error), so checking declarations bounds what openpyxl can inflate. 200 MiB of sheet XML holds
about 500,000 rows of ten numbers; the real workbook declares 0.5 MB.
"""
MAX_COMPRESSION_RATIO = 100
"""Largest uncompressed/compressed ratio of a big zip entry (sheet XML compresses ~7x)."""
RATIO_CHECK_MIN_BYTES = 2**20
"""Entries smaller than this may compress arbitrarily well: they cannot exhaust memory."""
MAX_DATA_ROWS = 250_000
"""Most non-blank data rows accepted: ~325x the real data set, still a few hundred MB in memory."""
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


def format_rows(items: Sequence[str], limit: int = MAX_LISTED_ROWS) -> str:
    """Join the first `limit` items and summarise the rest as "and N more"."""
    shown = ", ".join(items[:limit])
    hidden = len(items) - limit
    return f"{shown} and {hidden} more" if hidden > 0 else shown


def read_xlsx_cells(path: Path, columns: Sequence[str]) -> Cells:
    """Read the wanted columns from the one sheet whose header row names them.

    The sheet is found by its header (any sheet, any name), trailing blank rows and columns
    are ignored, and formulas give their cached values (a never-calculated formula reads as
    blank).

    Raises:
        WorkbookError: the file is not an .xlsx workbook, is hostile (zip or XML entity
            bomb), has no or several sheets with the header, misses or repeats a wanted
            column, or has no data rows.
        RuntimeError: openpyxl would parse XML without defusedxml.
    """
    _require_defused_xml()
    data = _read_bounded(path)
    _check_archive(path, data)
    with _openpyxl_errors(path), warnings.catch_warnings():
        # openpyxl warns about styles and extensions it drops; they never change cell values.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl\.")
        workbook = openpyxl.load_workbook(
            io.BytesIO(data), read_only=True, data_only=True, keep_links=False
        )
        try:
            sheet, header_row, header = _find_header_sheet(path, workbook, columns)
            where = _location(path, sheet.title)
            positions = _select_columns(header, columns, where, get_column_letter)
            rows = sheet.iter_rows(
                min_row=header_row + 1, max_col=max(positions) + 1, values_only=True
            )
            kept = _collect_rows(rows, positions, where)
        finally:
            workbook.close()
    return Cells(path, sheet.title, _sha256(data), tuple(columns), kept, header_row + 1)


def read_csv_cells(path: Path, columns: Sequence[str]) -> Cells:
    """Read the wanted columns of a UTF-8, comma-separated file with a header record.

    CSV has no types, so cells that spell a decimal number become floats (``nan``/``inf``
    spellings included, for the schema to reject); any other text stays text.

    Raises:
        WorkbookError: the file is not UTF-8 CSV, misses or repeats a wanted column, or has
            no data rows.
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
        kept = _collect_rows(records, positions, where, convert=_parse_csv_cell)
    except csv.Error as exc:
        raise WorkbookError(
            f"{where} is not a valid CSV file (record {records.line_num}: "
            f"{shown(exc, quote=False, limit=LIBRARY_MESSAGE_CHARS)})."
        ) from exc
    return Cells(path, None, _sha256(data), tuple(columns), kept, header_row + 1)


def read_parquet_cells(path: Path, columns: Sequence[str]) -> Cells:
    """Read the wanted columns of a Parquet file; rows are numbered from 1.

    Raises:
        WorkbookError: the file is not Parquet, declares more than the size limits, misses or
            repeats a wanted column, or has no rows.
    """
    data = _read_bounded(path)
    where = _location(path, None)
    buffer = pa.BufferReader(data)
    try:
        parquet = pq.ParquetFile(buffer)
    except (pa.ArrowException, OSError) as exc:
        raise WorkbookError(
            f"{where} is not a Parquet file (expected the PAR1 format; "
            f"received {_describe_bytes(data)})."
        ) from exc
    _check_parquet_sizes(where, parquet.metadata)
    _select_columns(parquet.schema_arrow.names, columns, where, _ordinal)
    try:
        table = parquet.read(columns=list(columns), use_threads=False)
    except (pa.ArrowException, OSError) as exc:
        raise WorkbookError(
            f"{where} is a damaged Parquet file "
            f"({shown(exc, quote=False, limit=LIBRARY_MESSAGE_CHARS)})."
        ) from exc
    values = [table.column(index).to_pylist() for index in range(table.num_columns)]
    kept = _collect_rows(zip(*values, strict=True), range(len(columns)), where)
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


def _check_archive(path: Path, data: bytes) -> None:
    """Refuse non-zips and zip bombs from the central directory alone, inflating nothing."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _not_xlsx(path, "a zip archive", _describe_bytes(data)) from exc
    with archive:
        entries = archive.infolist()
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


def _check_parquet_sizes(where: str, metadata: pq.FileMetaData) -> None:
    declared = sum(
        metadata.row_group(group).column(column).total_uncompressed_size
        for group in range(metadata.num_row_groups)
        for column in range(metadata.num_columns)
    )
    if declared > MAX_UNCOMPRESSED_BYTES:
        raise WorkbookError(
            f"{where} is refused: expected Parquet column chunks declaring at most "
            f"{MAX_UNCOMPRESSED_BYTES:,} bytes uncompressed (MAX_UNCOMPRESSED_BYTES). "
            f"Received: {declared:,} bytes."
        )
    if metadata.num_rows > MAX_DATA_ROWS:
        raise WorkbookError(
            f"{where} has too many rows. Expected at most {MAX_DATA_ROWS:,} (MAX_DATA_ROWS). "
            f"Received: {metadata.num_rows:,} rows."
        )


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
        defused = _find_cause(exc, DefusedXmlException)
        if defused is not None:
            raise WorkbookError(
                f"'{path}' is refused: its XML declares entities or external references "
                f"({defused}). Expected plain Office Open XML (Excel never writes entity "
                "declarations; expanding them is the 'billion laughs' attack)."
            ) from exc
        raise _not_xlsx(
            path,
            "a zip archive holding a readable Office Open XML spreadsheet",
            f"a part openpyxl could not read: {type(exc).__name__}: "
            f"{shown(exc, quote=False, limit=LIBRARY_MESSAGE_CHARS)}",
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
        # Read-only mode trusts the declared dimension and silently drops rows below it when
        # a writer got it wrong; without it every row in the XML is read.
        sheet.reset_dimensions()
        rows = sheet.iter_rows(
            max_row=HEADER_SEARCH_ROWS, max_col=MAX_HEADER_COLUMNS, values_only=True
        )
        for number, row in enumerate(rows, start=1):
            if wanted & {_header_name(value) for value in row}:
                found.append((sheet, number, row))
                break
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


def _collect_rows(
    rows: Iterable[Sequence[object]],
    positions: Sequence[int],
    where: str,
    convert: Callable[[object], object] | None = None,
) -> list[tuple[object, ...]]:
    """Keep the wanted cells of each row, then drop the blank rows after the last data row.

    Blank rows share one tuple, so a sheet with a million empty rows costs a list of
    references; only non-blank rows count towards `MAX_DATA_ROWS`.
    """
    blank = (None,) * len(positions)
    kept: list[tuple[object, ...]] = []
    end = filled = 0
    for row in rows:
        values = tuple(
            None if index >= len(row) or _is_blank(row[index]) else row[index]
            for index in positions
        )
        if values == blank:
            kept.append(blank)
            continue
        if convert is not None:
            values = tuple(None if value is None else convert(value) for value in values)
        kept.append(values)
        end = len(kept)
        filled += 1
        if filled > MAX_DATA_ROWS:
            raise WorkbookError(
                f"{where} has too many rows. Expected at most {MAX_DATA_ROWS:,} data rows "
                f"(MAX_DATA_ROWS). Received: more."
            )
    if end == 0:
        raise WorkbookError(
            f"{where}: expected at least one data row below the header. Received: none."
        )
    return kept[:end]


def _parse_csv_cell(value: object) -> object:
    text = str(value).strip()
    if _CSV_NUMBER.fullmatch(text) or _CSV_NON_FINITE.fullmatch(text):
        return float(text)  # "1e999" gives inf, which the schema rejects as non-finite
    return value
