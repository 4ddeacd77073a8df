"""The energy table (UCI ENB2012): its schema, validation, and Parquet with provenance.

Raw cells come from `lib.core.table_files` (which owns file safety); here they are checked against
the schema (every column numeric, finite, present in every row, within physical bounds) and
typed, then written to Parquet with an explicit schema and the provenance a later step needs
to trust the file: source hash and name, sheet, schema version, row count and code version.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lib.core.atomic import atomic_path
from lib.core.faults import fault_point
from lib.core.provenance import METADATA_KEY, PARQUET_COMPRESSION, read_json_metadata
from lib.core.table_files import (
    MAX_LISTED_ROWS,
    Cells,
    NumericCells,
    WorkbookError,
    format_rows,
    read_csv_cells,
    read_parquet_cells,
    read_xlsx_cells,
    shown,
)
from lib.energy.constants import FEATURES, TARGETS

SCHEMA_VERSION = "1"
"""Bump when columns, types or bounds change, so Parquet from older rules is told apart."""

# Physical bounds: wide enough for any user's building survey of the same schema, narrow
# enough to catch unit mix-ups and typing slips (the UCI data sits well inside all of them).
MAX_RELATIVE_COMPACTNESS = 1.5
"""Relative compactness is volume/area normalised to a cube-ish shape; UCI spans 0.62..0.98."""
MAX_AREA_M2 = 10_000.0
"""Surface, wall and roof areas in m²; UCI's largest is 808.5."""
MAX_HEIGHT_M = 100.0
"""Overall height in m; UCI has 3.5 and 7."""
ORIENTATION_CODES = (2, 5)
"""X6 orientation: 2 north, 3 east, 4 south, 5 west."""
MAX_GLAZING_AREA = 1.0
"""X7 glazing area as a fraction of floor area; UCI uses 0, 0.1, 0.25, 0.4."""
GLAZING_DISTRIBUTION_CODES = (0, 5)
"""X8 glazing distribution: 0 none, 1 uniform, 2..5 mostly north/east/south/west."""
MAX_LOAD_KWH_M2 = 500.0
"""Heating and cooling loads in kWh/m²; UCI spans 6..48."""

SOURCE_SHA256_KEY = "source_sha256"
SOURCE_NAME_KEY = "source_name"
SHEET_KEY = "sheet"
SCHEMA_VERSION_KEY = "schema_version"
ROW_COUNT_KEY = "row_count"
CODE_VERSION_KEY = "code_version"

_WORKBOOK_SUFFIXES = (".xlsx",)
_CSV_SUFFIXES = (".csv",)
_PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class ColumnSpec:
    """One schema column: its meaning and the values it may hold.

    Attributes:
        name: header as in the UCI workbook.
        meaning: what the column measures, for error messages.
        low: smallest plausible value.
        high: largest plausible value.
        low_open: whether `low` itself is excluded.
        high_open: whether `high` itself is excluded.
        integer: an integer-coded category (stored as int64, see `parquet_schema`).
    """

    name: str
    meaning: str
    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    @property
    def interval(self) -> str:
        """The allowed values in interval notation, e.g. ``(0, 1.5]``."""
        low = int(self.low) if self.integer else self.low
        high = int(self.high) if self.integer else self.high
        return f"{'(' if self.low_open else '['}{low:g}, {high:g}{')' if self.high_open else ']'}"

    def admits(self, value: float) -> bool:
        """Whether a finite `value` lies within the bounds (and is whole, for codes)."""
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below and (not self.integer or value.is_integer())


ENERGY_COLUMNS = (
    ColumnSpec("X1", "relative compactness", 0.0, MAX_RELATIVE_COMPACTNESS, low_open=True),
    ColumnSpec("X2", "surface area, m²", 0.0, MAX_AREA_M2, low_open=True, high_open=True),
    ColumnSpec("X3", "wall area, m²", 0.0, MAX_AREA_M2, low_open=True, high_open=True),
    ColumnSpec("X4", "roof area, m²", 0.0, MAX_AREA_M2, low_open=True, high_open=True),
    ColumnSpec("X5", "overall height, m", 0.0, MAX_HEIGHT_M, low_open=True),
    ColumnSpec("X6", "orientation code", *ORIENTATION_CODES, integer=True),
    ColumnSpec("X7", "glazing area fraction", 0.0, MAX_GLAZING_AREA),
    ColumnSpec("X8", "glazing distribution code", *GLAZING_DISTRIBUTION_CODES, integer=True),
    ColumnSpec("Y1", "heating load, kWh/m²", 0.0, MAX_LOAD_KWH_M2),
    ColumnSpec("Y2", "cooling load, kWh/m²", 0.0, MAX_LOAD_KWH_M2),
)
_SPECS = {spec.name: spec for spec in ENERGY_COLUMNS}


def parquet_schema(columns: Sequence[str]) -> pa.Schema:
    """The explicit Arrow schema of energy columns: float64 measures, int64 category codes.

    X6 and X8 are int64 rather than int8: Parquet's dictionary and run-length encoding make
    small codes as cheap on disk either way, pandas and NumPy default to int64 (no silent
    upcasts on concat or merge), and int8 arithmetic wraps around silently. Columns are not
    nullable because validation forbids missing values.

    Raises:
        ValueError: a column is not in the energy schema.
    """
    unknown = [name for name in columns if name not in _SPECS]
    if unknown:
        raise ValueError(
            f"Expected energy columns from {', '.join(_SPECS)}. Received: {', '.join(unknown)}"
        )
    return pa.schema(
        [
            pa.field(name, pa.int64() if _SPECS[name].integer else pa.float64(), nullable=False)
            for name in columns
        ]
    )


def read_energy_workbook(path: Path) -> pd.DataFrame:
    """Read and validate the energy workbook: features X1..X8 and targets Y1, Y2, typed.

    Raises:
        WorkbookError: the file is unreadable or hostile, or a column or cell breaks the
            schema; the message names the file, sheet, column, rows and expectation.
    """
    frame, _ = _read_energy(path)
    return frame


def read_feature_table(path: Path) -> pd.DataFrame:
    """Read prediction inputs: X1..X8 from an .xlsx, .csv or .parquet file, validated.

    Target columns may be present and are ignored; other columns are ignored too.

    Raises:
        WorkbookError: unsupported suffix, unreadable file, or a feature column or cell
            breaks the schema.
    """
    return validate_cells(_read_cells(path, FEATURES))


def read_actual_loads(path: Path, rows: int) -> pd.DataFrame | None:
    """The Y1 and Y2 columns of a feature table as given, those it has; None if neither.

    Called after `read_feature_table` passed, for `rows` rows: the cells are not validated
    (a blank actual load is fine: it is not an input), only kept beside the predictions.
    """
    both = _given_columns(path, TARGETS, rows)  # one more read of the file, as a rule
    if both is not None:
        return both
    found = [
        column for name in TARGETS if (column := _given_columns(path, (name,), rows)) is not None
    ]
    return pd.concat(found, axis=1) if found else None


def _given_columns(path: Path, names: Sequence[str], rows: int) -> pd.DataFrame | None:
    """Columns `names` of the table as given, first `rows` rows; None if one is missing."""
    try:
        cells = _read_cells(path, (*FEATURES, *names))
    except WorkbookError:
        return None
    frame = pd.DataFrame(index=range(rows))
    for offset, name in enumerate(names, start=len(FEATURES)):
        if isinstance(cells, NumericCells):  # every cell a number: the column as it is
            frame[name] = pd.Series(cells.numbers[offset][:rows]).reindex(range(rows))
            continue
        column = pd.Series([row[offset] for row in cells.rows[:rows]], dtype=object)
        column = column.reindex(range(rows))
        try:  # numbers stay numbers; a column with any text stays text
            frame[name] = pd.to_numeric(column)
        except (ValueError, TypeError):
            frame[name] = column
    return frame


def _read_cells(path: Path, columns: Sequence[str]) -> Cells | NumericCells:
    suffix = path.suffix.lower()
    if suffix in _WORKBOOK_SUFFIXES:
        return read_xlsx_cells(path, columns)
    if suffix in _CSV_SUFFIXES:
        return read_csv_cells(path, columns)
    if suffix in _PARQUET_SUFFIXES:
        return read_parquet_cells(path, columns)
    accepted = ", ".join(_WORKBOOK_SUFFIXES + _CSV_SUFFIXES + _PARQUET_SUFFIXES)
    raise WorkbookError(
        f"'{path}': expected a feature table with suffix {accepted}. Received: {suffix!r}."
    )


def validate_cells(cells: Cells | NumericCells) -> pd.DataFrame:
    """Check every cell against its column's spec and return the typed frame.

    All problems are gathered first, so one error lists every bad column at once. Number
    columns (`NumericCells`) are checked as arrays; only their offending rows are rendered one
    by one, in the same words.

    Raises:
        WorkbookError: any cell is missing, not a number, not finite or out of bounds.
    """
    if isinstance(cells, NumericCells):
        return _validate_numbers(cells)
    problems: list[str] = []
    data: dict[str, np.ndarray] = {}
    for index, name in enumerate(cells.columns):
        spec = _SPECS[name]
        values = [row[index] for row in cells.rows]
        issues, floats = _check_column(spec, values, cells.first_row)
        problems.extend(f"  column '{name}' ({spec.meaning}): {issue}" for issue in issues)
        column = np.array(floats, dtype=np.float64)
        data[name] = column.astype(np.int64) if spec.integer and not issues else column
    if problems:
        raise WorkbookError(f"Invalid energy table in {cells.location}:\n" + "\n".join(problems))
    return pd.DataFrame(data, columns=list(cells.columns))


def _validate_numbers(cells: NumericCells) -> pd.DataFrame:
    problems: list[str] = []
    data: dict[str, np.ndarray] = {}
    for index, (name, values) in enumerate(zip(cells.columns, cells.numbers, strict=True)):
        spec = _SPECS[name]
        offending = np.flatnonzero(~_admitted(spec, values))
        shown = _excel_number if cells.shows_int(index) else float
        numbered = ((cells.first_row + int(i), shown(values[i])) for i in offending)
        issues, _ = _check_cells(spec, numbered)
        problems.extend(f"  column '{name}' ({spec.meaning}): {issue}" for issue in issues)
        data[name] = values.astype(np.int64) if spec.integer and not issues else values
    if problems:
        raise WorkbookError(f"Invalid energy table in {cells.location}:\n" + "\n".join(problems))
    return pd.DataFrame(data, columns=list(cells.columns))


def _admitted(spec: ColumnSpec, values: np.ndarray) -> np.ndarray:
    """`ColumnSpec.admits` over an array; NaN and infinities are never admitted."""
    with np.errstate(invalid="ignore"):
        above = values > spec.low if spec.low_open else values >= spec.low
        below = values < spec.high if spec.high_open else values <= spec.high
        admitted = above & below & np.isfinite(values)
        if spec.integer:
            admitted &= values == np.floor(values)
    return np.asarray(admitted, dtype=bool)


def _excel_number(value: float) -> float | int:
    """A number as openpyxl reads it: Excel writes whole numbers without a point, so ints."""
    number = float(value)
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def write_parquet(frame: pd.DataFrame, target: Path, provenance: dict[str, Any]) -> None:
    """Write energy columns with `parquet_schema`, `provenance` as JSON in the file's metadata.

    The provenance sits under the one key every trainflow Parquet file uses
    (`lib.core.provenance`). Temp-then-rename: `target` appears whole or not at all.

    Raises:
        ValueError: a column is not in the energy schema.
        TypeError: the provenance is not JSON-serialisable.
    """
    schema = parquet_schema(list(frame.columns))
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(provenance, sort_keys=True)})
    with atomic_path(target) as temporary:
        pq.write_table(table, temporary, compression=PARQUET_COMPRESSION)
        fault_point("parquet")


def read_parquet_metadata(path: Path) -> dict[str, Any]:
    """The provenance `write_parquet` stored, reading only the file's schema.

    Raises:
        WorkbookError: the file is no Parquet, or holds no trainflow provenance.
    """
    return read_json_metadata(path, METADATA_KEY, WorkbookError)


def excel_to_parquet(source: Path, target: Path, *, source_sha256: str, code_version: str) -> int:
    """Validate the energy workbook and write it as Parquet with provenance; return rows written.

    `source_sha256` is checked against the bytes actually parsed, so the provenance cannot
    name a different file than the one converted. On any error nothing is written.

    Raises:
        WorkbookError: the workbook breaks the schema, or its hash is not `source_sha256`.
    """
    frame, cells = _read_energy(source)
    if cells.sha256 != source_sha256.lower():
        raise WorkbookError(
            f"'{source}': expected content with sha256 {source_sha256}. Received: sha256 "
            f"{cells.sha256} (the file changed after it was hashed)."
        )
    metadata = {
        SOURCE_SHA256_KEY: cells.sha256,
        SOURCE_NAME_KEY: source.name,
        SHEET_KEY: cells.sheet or "",
        SCHEMA_VERSION_KEY: SCHEMA_VERSION,
        ROW_COUNT_KEY: str(len(frame)),
        CODE_VERSION_KEY: code_version,
    }
    write_parquet(frame, target, metadata)
    return len(frame)


def _read_energy(path: Path) -> tuple[pd.DataFrame, Cells | NumericCells]:
    cells = read_xlsx_cells(path, FEATURES + TARGETS)
    return validate_cells(cells), cells


def _as_float(value: float | numbers.Real) -> float:
    try:
        return float(value)
    except OverflowError:  # an int too big for a float, e.g. <v>1000...0</v>
        return math.copysign(math.inf, value)


def _show(value: object) -> str:
    """A cell as an error quotes it: text quoted, numbers bare, both cut short (`shown`)."""
    return shown(value, quote=isinstance(value, str))


class _Finding:
    """Rows with one kind of problem in one column: the first few rendered, the rest counted.

    A 100,000-row table of text would otherwise build a message fragment for every row.
    """

    def __init__(self, sentence: str, render: Callable[[int, object], str]) -> None:
        self.sentence = sentence
        self.render = render
        self.examples: list[str] = []
        self.count = 0

    def add(self, row: int, value: object) -> None:
        if len(self.examples) < MAX_LISTED_ROWS:
            self.examples.append(self.render(row, value))
        self.count += 1

    def describe(self) -> str:
        # No closing full stop: "row 4 = 900." would read as a float.
        return f"{self.sentence}{format_rows(self.examples, total=self.count)}"


def _row_number(row: int, value: object) -> str:
    return str(row)


def _row_and_value(row: int, value: object) -> str:
    return f"row {row} = {_show(value)}"


def _check_column(
    spec: ColumnSpec, values: list[object], first_row: int
) -> tuple[list[str], list[float]]:
    """One sentence per kind of problem in a column (each listing its first few rows), and
    the column's values as floats (complete only when there is no problem)."""
    return _check_cells(spec, enumerate(values, start=first_row))


def _check_cells(
    spec: ColumnSpec, numbered: Iterable[tuple[int, object]]
) -> tuple[list[str], list[float]]:
    """`_check_column` over (row number, value) pairs: all of a column, or its offending rows."""
    kind = "an integer" if spec.integer else "a number"
    missing = _Finding(
        "expected a value in every row. Received: blank or NaN in rows ", _row_number
    )
    not_numbers = _Finding("expected a number. Received: ", _row_and_value)
    not_finite = _Finding("expected a finite number. Received: ", _row_and_value)
    out_of_bounds = _Finding(f"expected {kind} in {spec.interval}. Received: ", _row_and_value)
    floats: list[float] = []
    for row, value in numbered:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            missing.add(row, value)
        # `type(...) is float` first: numbers.Real's ABC check costs more than the rest.
        elif type(value) is not float and (
            isinstance(value, bool) or not isinstance(value, numbers.Real)
        ):
            not_numbers.add(row, value)
        elif not math.isfinite(number := _as_float(value)):
            not_finite.add(row, number)
        elif not spec.admits(number):
            out_of_bounds.add(row, value)
        else:
            floats.append(number)
    found = (missing, not_numbers, not_finite, out_of_bounds)
    return [finding.describe() for finding in found if finding.count], floats
