"""The energy schema: validation of every failure class, Parquet round trip, provenance."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lib.core.hashing import sha256_file
from lib.core.table_files import WorkbookError
from lib.energy.constants import FEATURES as ENERGY_FEATURES
from lib.energy.constants import TARGETS as ENERGY_TARGETS
from lib.energy.constants import WORKBOOK as ENERGY_WORKBOOK
from lib.energy.table import (
    ENERGY_COLUMNS,
    SCHEMA_VERSION,
    excel_to_parquet,
    parquet_schema,
    read_energy_workbook,
    read_feature_table,
    read_parquet_metadata,
    write_parquet,
)
from tests.fixtures.hostile import rewrite_entry

HEADER = [*ENERGY_FEATURES, *ENERGY_TARGETS]
# Four rows in the style of UCI ENB2012 (X6 orientation 2..5, X8 glazing distribution 0..5).
ROWS: list[list[object]] = [
    [0.98, 514.5, 294.0, 110.25, 7.0, 2, 0.0, 0, 15.55, 21.33],
    [0.90, 563.5, 318.5, 122.5, 7.0, 3, 0.1, 1, 20.84, 28.28],
    [0.62, 808.5, 367.5, 220.5, 3.5, 4, 0.25, 3, 12.33, 14.45],
    [0.71, 710.5, 269.5, 220.5, 3.5, 5, 0.4, 5, 12.43, 15.13],
]
SHEET_XML = "xl/worksheets/sheet1.xml"
INF_SENTINEL = 777.125


def write_xlsx(path: Path, rows: list[list[object]], header: list[str] = HEADER) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Data"
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def with_cell(row: int, column: str, value: object) -> list[list[object]]:
    """`ROWS` with one cell replaced; `row` is the Excel row (the header is row 1)."""
    rows = [list(values) for values in ROWS]
    rows[row - 2][HEADER.index(column)] = value
    return rows


def convert(source: Path, target: Path) -> int:
    return excel_to_parquet(
        source, target, source_sha256=sha256_file(source), code_version="test-code"
    )


def test_schema_names_features_and_targets() -> None:
    assert ENERGY_FEATURES == ("X1", "X2", "X3", "X4", "X5", "X6", "X7", "X8")
    assert ENERGY_TARGETS == ("Y1", "Y2")
    assert [column.name for column in ENERGY_COLUMNS] == [*ENERGY_FEATURES, *ENERGY_TARGETS]


def test_parquet_schema_stores_category_codes_as_integers() -> None:
    schema = parquet_schema(HEADER)

    assert schema.field("X6").type == pa.int64()
    assert schema.field("X8").type == pa.int64()
    assert {schema.field(name).type for name in HEADER if name not in ("X6", "X8")} == {
        pa.float64()
    }
    assert not any(field.nullable for field in schema)
    with pytest.raises(ValueError, match=r"Expected energy columns from X1.*Received: Z9"):
        parquet_schema(["X1", "Z9"])


def test_read_energy_workbook_returns_typed_values(tmp_path: Path) -> None:
    frame = read_energy_workbook(write_xlsx(tmp_path / "energy.xlsx", ROWS))

    assert list(frame.columns) == HEADER
    assert frame["X6"].dtype == np.int64 and frame["X8"].dtype == np.int64
    assert frame["X5"].dtype == np.float64
    np.testing.assert_array_equal(frame.to_numpy(dtype=float), np.array(ROWS, dtype=float))


def test_excel_to_parquet_round_trips_values_types_and_provenance(tmp_path: Path) -> None:
    source = write_xlsx(tmp_path / "energy.xlsx", ROWS)
    target = tmp_path / "out" / "energy.parquet"

    written = convert(source, target)

    assert written == len(ROWS)
    assert sorted(target.parent.iterdir()) == [target]  # no temporary file left behind
    table = pq.read_table(target)
    assert table.schema.remove_metadata() == parquet_schema(HEADER)
    pd.testing.assert_frame_equal(table.to_pandas(), read_energy_workbook(source))
    assert read_parquet_metadata(target) == {
        "source_sha256": sha256_file(source),
        "source_name": "energy.xlsx",
        "sheet": "Data",
        "schema_version": SCHEMA_VERSION,
        "row_count": "4",
        "code_version": "test-code",
    }


def test_excel_to_parquet_refuses_a_source_that_does_not_match_its_hash(tmp_path: Path) -> None:
    source = write_xlsx(tmp_path / "energy.xlsx", ROWS)
    target = tmp_path / "energy.parquet"

    with pytest.raises(WorkbookError, match=r"expected content with sha256 0{64}\. Received"):
        excel_to_parquet(source, target, source_sha256="0" * 64, code_version="x")
    assert not target.exists()


def _infinite(path: Path) -> None:
    """openpyxl writes inf as an empty cell, so the file is edited: Excel's own number
    format can spell a value past float range (1E+400), which reads back as inf."""
    write_xlsx(path, with_cell(3, "Y1", INF_SENTINEL))
    rewrite_entry(
        path,
        SHEET_XML,
        lambda xml: xml.replace(f"<v>{INF_SENTINEL}</v>".encode(), b"<v>1E+400</v>"),
    )


def _entity_bomb(path: Path) -> None:
    write_xlsx(path, ROWS)
    doctype = '<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    rewrite_entry(path, SHEET_XML, lambda xml: doctype.encode() + xml)


def _zip_bomb(path: Path) -> None:
    write_xlsx(path, ROWS)
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("xl/media/padding.bin", "w") as entry,
    ):
        for _ in range(8):
            entry.write(b"\0" * 2**20)


def _renumber_last_row(number: int) -> Callable[[Path], None]:
    """A workbook whose last data row (Excel row 5) is moved to row `number` in the XML."""

    def build(path: Path) -> None:
        write_xlsx(path, ROWS)
        rewrite_entry(
            path,
            SHEET_XML,
            lambda xml: xml.replace(b'<row r="5"', f'<row r="{number}"'.encode()),
        )

    return build


def _header_only(path: Path) -> None:
    write_xlsx(path, [])


def _empty_sheet(path: Path) -> None:
    openpyxl.Workbook().save(path)


FAILURES: list[tuple[str, Callable[[Path], object], str]] = [
    (
        "missing-column",
        lambda p: write_xlsx(p, [row[:-1] for row in ROWS], HEADER[:-1]),
        r"sheet 'Data': expected each of the columns X1, .*Y2 exactly once .* missing Y2",
    ),
    (
        "duplicated-column",
        lambda p: write_xlsx(p, [[*row, row[2]] for row in ROWS], [*HEADER, "X3"]),
        r"sheet 'Data': .* Received: X3 repeated in columns C and K\.",
    ),
    (
        "text-in-number",
        lambda p: write_xlsx(p, with_cell(3, "X2", "563,5")),
        r"sheet 'Data':\n  column 'X2' \(surface area, m²\): expected a number\. "
        r"Received: row 3 = '563,5'$",
    ),
    (
        "text-nan",  # a typed 'nan' is text in a workbook, not a missing number
        lambda p: write_xlsx(p, with_cell(2, "X7", "nan")),
        r"column 'X7' .*: expected a number\. Received: row 2 = 'nan'$",
    ),
    (
        "boolean",
        lambda p: write_xlsx(p, with_cell(5, "X5", True)),
        r"column 'X5' .*: expected a number\. Received: row 5 = True$",
    ),
    (
        "missing-value",
        lambda p: write_xlsx(p, with_cell(4, "X4", None)),
        r"column 'X4' \(roof area, m²\): expected a value in every row\. "
        r"Received: blank or NaN in rows 4$",
    ),
    (
        "blank-row-inside",
        lambda p: write_xlsx(p, [ROWS[0], [], *ROWS[1:]]),
        r"column 'X1' .*: expected a value in every row\. Received: blank or NaN in rows 3\n",
    ),
    (
        "infinite",
        _infinite,
        r"column 'Y1' \(heating load, kWh/m²\): expected a finite number\. Received: row 3 = inf$",
    ),
    (
        "absurd-area",
        lambda p: write_xlsx(p, with_cell(2, "X2", 514_500)),
        r"column 'X2' .*: expected a number in \(0, 10000\)\. Received: row 2 = 514500$",
    ),
    (
        "absurd-orientation",
        lambda p: write_xlsx(p, with_cell(3, "X6", 7)),
        r"column 'X6' \(orientation code\): expected an integer in \[2, 5\]\. Received: row 3 = 7$",
    ),
    (
        "fractional-code",
        lambda p: write_xlsx(p, with_cell(4, "X8", 2.5)),
        r"column 'X8' .*: expected an integer in \[0, 5\]\. Received: row 4 = 2\.5$",
    ),
    (
        "negative-load",
        lambda p: write_xlsx(p, with_cell(5, "Y2", -1.5)),
        r"column 'Y2' .*: expected a number in \[0, 500\]\. Received: row 5 = -1\.5$",
    ),
    ("empty-sheet", _empty_sheet, r"expected exactly one sheet with a header row naming X1"),
    ("header-only", _header_only, r"sheet 'Data': expected at least one data row"),
    (
        "csv-renamed",
        lambda p: p.write_text(",".join(HEADER) + "\n"),
        r"is not an Excel \.xlsx workbook \(expected a zip archive; received text",
    ),
    (
        "truncated",
        lambda p: (write_xlsx(p, ROWS), p.write_bytes(p.read_bytes()[:-100])),
        r"is not an Excel \.xlsx workbook \(expected a zip archive; received a truncated",
    ),
    (
        "zero-bytes",
        lambda p: p.write_bytes(b""),
        r"is not an Excel \.xlsx workbook \(expected a zip archive; received an empty file",
    ),
    (
        "random-bytes",
        lambda p: p.write_bytes(np.random.default_rng(1).bytes(2048)),
        r"is not an Excel \.xlsx workbook \(expected a zip archive; received 2,048 bytes",
    ),
    (
        "long-text",
        lambda p: write_xlsx(p, with_cell(3, "X2", "x" * 20_000)),
        rf"column 'X2' .*: expected a number\. Received: row 3 = '{'x' * 32}'\.\.\.$",
    ),
    (
        "row-beyond-excel",
        _renumber_last_row(1_000_000_000),
        r"sheet 'Data': expected row numbers up to 1,048,576 \(Excel's last row\)\. "
        r"Received: row 1,000,000,000\.",
    ),
    (
        "gap-before-data",
        _renumber_last_row(900_000),
        r"sheet 'Data': expected at most 10,000 blank rows .* before data in row 900,000\.",
    ),
    ("entity-bomb", _entity_bomb, r"is refused: its XML declares entities"),
    ("zip-bomb", _zip_bomb, r"is refused as a possible zip bomb"),
]


@pytest.mark.parametrize(
    ("build", "message"),
    [(build, message) for _, build, message in FAILURES],
    ids=[name for name, _, _ in FAILURES],
)
def test_excel_to_parquet_refuses_bad_workbooks_and_writes_nothing(
    tmp_path: Path, build: Callable[[Path], object], message: str
) -> None:
    source = tmp_path / "energy.xlsx"
    build(source)
    out = tmp_path / "out"
    target = out / "energy.parquet"

    with pytest.raises(WorkbookError, match=message) as caught:
        convert(source, target)

    assert str(source) in str(caught.value)
    assert not target.exists()
    assert not out.exists() or not any(out.iterdir())


def test_lists_the_first_rows_of_a_problem_then_counts_the_rest(tmp_path: Path) -> None:
    rows = [list(row) for row in ROWS * 2]
    for row in rows:
        row[0] = 0.0
    path = write_xlsx(tmp_path / "energy.xlsx", rows)

    with pytest.raises(
        WorkbookError,
        match=r"expected a number in \(0, 1\.5\]\. Received: row 2 = 0, row 3 = 0, "
        r"row 4 = 0, row 5 = 0, row 6 = 0 and 3 more$",
    ):
        read_energy_workbook(path)


def test_a_column_of_long_texts_gives_a_short_message(tmp_path: Path) -> None:
    rows = [[f"{index} " * 50, *row[1:]] for index, row in enumerate(ROWS * 500)]
    path = write_xlsx(tmp_path / "energy.xlsx", rows)

    with pytest.raises(WorkbookError, match=r"Received: row 2 = '0 0 0.* and 1,995 more$") as e:
        read_energy_workbook(path)
    assert len(str(e.value)) < len(str(path)) + 500


def test_reports_every_bad_column_in_one_error(tmp_path: Path) -> None:
    rows = with_cell(2, "X1", "abc")
    rows[2][HEADER.index("Y2")] = 900.0
    path = write_xlsx(tmp_path / "energy.xlsx", rows)

    with pytest.raises(WorkbookError) as caught:
        read_energy_workbook(path)

    lines = str(caught.value).splitlines()
    assert lines[0] == f"Invalid energy table in '{path}', sheet 'Data':"
    assert lines[1].startswith("  column 'X1'") and "row 2 = 'abc'" in lines[1]
    assert lines[2].startswith("  column 'Y2'") and lines[2].endswith("Received: row 4 = 900")


def test_write_parquet_refuses_provenance_that_is_not_json(tmp_path: Path) -> None:
    frame = pd.DataFrame({"X1": [0.9]})
    target = tmp_path / "energy.parquet"

    with pytest.raises(TypeError, match="not JSON serializable"):
        write_parquet(frame, target, {"rows": object()})
    assert not target.exists()


def test_read_parquet_metadata_names_a_file_without_provenance(tmp_path: Path) -> None:
    path = tmp_path / "plain.parquet"
    pd.DataFrame({"X1": [0.9]}).to_parquet(path)

    with pytest.raises(WorkbookError, match=r"plain\.parquet: Expected 'trainflow' key-value"):
        read_parquet_metadata(path)


def test_read_feature_table_accepts_a_workbook_without_targets(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "inputs.xlsx", [row[:8] for row in ROWS], HEADER[:8])

    frame = read_feature_table(path)

    assert list(frame.columns) == list(ENERGY_FEATURES)
    assert frame["X6"].tolist() == [2, 3, 4, 5]


def test_read_feature_table_reads_csv_and_ignores_targets_and_extras(tmp_path: Path) -> None:
    path = tmp_path / "inputs.csv"
    lines = ["id," + ",".join(HEADER)] + [
        f"{n}," + ",".join(map(str, r)) for n, r in enumerate(ROWS)
    ]
    path.write_text("\n".join(lines) + "\n")

    frame = read_feature_table(path)

    assert list(frame.columns) == list(ENERGY_FEATURES)
    np.testing.assert_array_equal(frame.to_numpy(dtype=float), np.array(ROWS)[:, :8])


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("", r"column 'X3' .*: expected a value in every row\. Received: blank or NaN in rows 3$"),
        (
            "NaN",
            r"column 'X3' .*: expected a value in every row\. Received: blank or NaN in rows 3",
        ),
        ("inf", r"column 'X3' .*: expected a finite number\. Received: row 3 = inf$"),
        ("294 m2", r"column 'X3' .*: expected a number\. Received: row 3 = '294 m2'$"),
    ],
)
def test_read_feature_table_validates_csv_cells(tmp_path: Path, cell: str, message: str) -> None:
    path = tmp_path / "inputs.csv"
    rows = [list(map(str, row[:8])) for row in ROWS]
    rows[1][2] = cell
    path.write_text("\n".join(",".join(row) for row in [HEADER[:8], *rows]) + "\n")

    with pytest.raises(WorkbookError, match=message):
        read_feature_table(path)


def test_read_feature_table_reads_parquet_and_rejects_a_bad_code(tmp_path: Path) -> None:
    path = tmp_path / "inputs.parquet"
    frame = pd.DataFrame([row[:8] for row in ROWS], columns=list(ENERGY_FEATURES))
    frame.to_parquet(path)
    assert read_feature_table(path)["X8"].tolist() == [0, 1, 3, 5]

    frame.loc[3, "X8"] = 9
    frame.to_parquet(path)
    with pytest.raises(WorkbookError, match=r"column 'X8' .*\[0, 5\]\. Received: row 4 = 9$"):
        read_feature_table(path)


def test_read_feature_table_refuses_other_suffixes(tmp_path: Path) -> None:
    path = tmp_path / "inputs.json"
    path.write_text("{}")

    with pytest.raises(WorkbookError, match=r"suffix \.xlsx, \.csv, \.parquet, \.pq\. Received"):
        read_feature_table(path)


@pytest.mark.data
def test_the_real_workbook_converts_with_its_published_hash(
    shared_data: Path, tmp_path: Path
) -> None:
    source = shared_data / ENERGY_WORKBOOK.mirror_path
    target = tmp_path / "energy.parquet"
    assert ENERGY_WORKBOOK.sha256 is not None

    written = excel_to_parquet(
        source, target, source_sha256=ENERGY_WORKBOOK.sha256, code_version="test"
    )

    frame = pd.read_parquet(target)
    assert written == len(frame) == 768
    assert list(frame.columns) == HEADER
    assert set(frame["X6"]) == {2, 3, 4, 5}
    assert set(frame["X8"]) == {0, 1, 2, 3, 4, 5}
    assert not frame.isna().any().any()
    metadata = read_parquet_metadata(target)
    assert metadata["sheet"] == "Φύλλο1"
    assert metadata["row_count"] == "768"


def test_a_long_text_cell_is_quoted_in_part(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "book.xlsx", with_cell(3, "X2", "secret " * 50))
    with pytest.raises(WorkbookError, match=r"Received: row 3 = 'secret secret .{18}'\.\.\.$"):
        convert(path, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize(
    ("given", "kept"),
    [("Y1,Y2", ["Y1", "Y2"]), ("Y1", ["Y1"]), ("Y2", ["Y2"]), ("note", [])],
)
def test_actual_loads_are_kept_whichever_the_file_has(
    tmp_path: Path, given: str, kept: list[str]
) -> None:
    from lib.energy.table import read_actual_loads

    extra = given.split(",")
    rows = [
        "X1,X2,X3,X4,X5,X6,X7,X8," + given,
        "0.98,514.5,294,110.25,7,2,0,0," + ",".join("15.5" for _ in extra),
        "0.9,563.5,318.5,122.5,7,3,0.1,1," + ",".join("" for _ in extra),
    ]
    table = tmp_path / "buildings.csv"
    table.write_text("\n".join(rows) + "\n")

    actual = read_actual_loads(table, 2)

    if not kept:
        assert actual is None
        return
    assert actual is not None and list(actual.columns) == kept
    assert actual.iloc[0].tolist() == [15.5] * len(kept)
    assert actual.iloc[1].isna().all()
