"""Workbooks past openpyxl's budget: read by calamine when plain, refused in one line otherwise.

Sheets are written as spreadsheets write them by `craft_xlsx` (openpyxl takes minutes for a
hundred thousand rows); the largest here holds 120,000 rows, past the old limits of 100,000
data rows and 200,000 XML elements.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from lib.core.table_files import (
    MAX_PARSED_ELEMENTS,
    NumericCells,
    WorkbookError,
    read_csv_cells,
    read_xlsx_cells,
)
from lib.energy.table import read_energy_workbook
from tests.fixtures.energy import HEADERS, energy_columns, write_plain_energy_workbook
from tests.fixtures.hostile import craft_xlsx

LARGE_ROWS = 120_000
# Rows of ten cells (21 elements each) needed to pass openpyxl's budget.
PAST_BUDGET_ROWS = MAX_PARSED_ELEMENTS // 21 + 100


def header(*names: str) -> str:
    cells = "".join(
        f'<c r="{chr(ord("A") + index)}1" t="inlineStr"><is><t>{name}</t></is></c>'
        for index, name in enumerate(names)
    )
    return f'<row r="1">{cells}</row>'


def plain_row(number: int, *values: object) -> str:
    """A row as spreadsheets write it; a str value becomes an inline string."""
    cells = []
    for index, value in enumerate(values):
        ref = f"{chr(ord('A') + index)}{number}"
        if isinstance(value, str):
            cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>')
        else:
            cells.append(f'<c r="{ref}"><v>{value}</v></c>')
    return f'<row r="{number}">' + "".join(cells) + "</row>"


def number_rows(count: int, *, first: int = 2) -> list[str]:
    return [plain_row(number, *range(10)) for number in range(first, first + count)]


@pytest.fixture(scope="module")
def large_workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("large") / "energy.xlsx"
    return write_plain_energy_workbook(path, LARGE_ROWS, seed=3)


def test_a_sheet_past_the_old_limits_is_read_whole_as_numbers(large_workbook: Path) -> None:
    cells = read_xlsx_cells(large_workbook, HEADERS)

    assert isinstance(cells, NumericCells)
    assert (cells.first_row, len(cells.numbers[0])) == (2, LARGE_ROWS)
    expected = [np.round(column, 4) for column in energy_columns(LARGE_ROWS, seed=3)]
    for name, got, want in zip(HEADERS, cells.numbers, expected, strict=True):
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_a_large_energy_workbook_validates_as_arrays(large_workbook: Path) -> None:
    frame = read_energy_workbook(large_workbook)

    assert frame.shape == (LARGE_ROWS, len(HEADERS))
    assert (frame.dtypes["X6"], frame.dtypes["X8"], frame.dtypes["Y1"]) == ("int64",) * 2 + (
        "float64",
    )


def test_out_of_bounds_numbers_in_a_large_sheet_are_listed_by_row(tmp_path: Path) -> None:
    rows = number_rows(PAST_BUDGET_ROWS)
    rows[4] = plain_row(6, *range(9), 900)  # Y2 = 900 kWh/m² in Excel row 6
    rows[-1] = plain_row(PAST_BUDGET_ROWS + 1, *range(8), -1.5, 9)
    path = craft_xlsx(tmp_path / "t.xlsx", header(*HEADERS) + "".join(rows))

    with pytest.raises(WorkbookError) as caught:
        read_energy_workbook(path)

    message = str(caught.value)
    assert (
        "column 'Y2' (cooling load, kWh/m²): expected a number in [0, 500]. Received: " in message
    )
    assert "row 6 = 900" in message
    assert (
        f"column 'Y1' (heating load, kWh/m²): expected a number in [0, 500]. "
        f"Received: row {PAST_BUDGET_ROWS + 1} = -1.5" in message
    )
    assert "column 'X1'" in message  # 0 is outside (0, 1.5]: every row listed, counted
    assert f"and {PAST_BUDGET_ROWS - 5:,} more" in message


def test_a_text_cell_in_a_sheet_past_the_budget_is_refused_in_one_line(tmp_path: Path) -> None:
    rows = number_rows(PAST_BUDGET_ROWS)
    rows[3] = plain_row(5, *range(2), "abc", *range(7))
    path = craft_xlsx(tmp_path / "t.xlsx", header(*HEADERS) + "".join(rows))

    with pytest.raises(WorkbookError) as caught:
        read_xlsx_cells(path, HEADERS)

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"'{path}', sheet 'S1' is refused as too costly to read cell by")
    assert "Received: blanks, text, dates, booleans or error values" in message


def test_a_sheet_past_the_budget_whose_cells_do_not_name_positions_is_refused(
    tmp_path: Path,
) -> None:
    rows = [f'<row r="{n}">' + "<c><v>1</v></c>" * 10 + "</row>" for n in range(2, 20_000)]
    path = craft_xlsx(tmp_path / "t.xlsx", header(*HEADERS) + "".join(rows))

    with pytest.raises(WorkbookError, match=r"do not name their positions first") as caught:
        read_xlsx_cells(path, HEADERS)
    assert "\n" not in str(caught.value)


def test_rows_out_of_order_in_a_large_plain_sheet_read_as_openpyxl_reports_them(
    tmp_path: Path,
) -> None:
    rows = number_rows(PAST_BUDGET_ROWS)
    rows[10], rows[11] = rows[11], rows[10]
    path = craft_xlsx(tmp_path / "t.xlsx", header(*HEADERS) + "".join(rows))

    with pytest.raises(
        WorkbookError,
        match=r"sheet 'S1': expected row numbers rising from 1, as spreadsheets write them\. "
        r"Received: row 12 after row 13\.$",
    ):
        read_xlsx_cells(path, HEADERS)


def test_two_cells_far_apart_are_not_handed_to_calamine(tmp_path: Path) -> None:
    """calamine would allocate the whole rectangle A1:XFD1048576 (550 GB) for these."""
    far = '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
    path = craft_xlsx(tmp_path / "t.xlsx", header(*HEADERS) + plain_row(2, *range(1, 11)) + far)

    started = time.perf_counter()
    cells = read_xlsx_cells(path, HEADERS)

    assert time.perf_counter() - started < 30  # a generous bound; it takes milliseconds
    assert cells.rows == [tuple(range(1, 11))]


def _csv_of_numbers(path: Path, rows: int) -> Path:
    record = ",".join(str(value) for value in range(1, 11)) + "\n"
    path.write_text(",".join(HEADERS) + "\n" + record * rows)
    return path


def test_a_csv_past_the_old_row_limit_is_parsed_as_numbers(tmp_path: Path) -> None:
    path = _csv_of_numbers(tmp_path / "t.csv", LARGE_ROWS)

    cells = read_csv_cells(path, HEADERS)

    assert isinstance(cells, NumericCells)
    assert (cells.first_row, len(cells.numbers[0]), cells.rows[-1]) == (
        2,
        LARGE_ROWS,
        tuple(float(value) for value in range(1, 11)),
    )


def test_a_text_cell_in_a_long_csv_is_refused_in_one_line(tmp_path: Path) -> None:
    path = _csv_of_numbers(tmp_path / "t.csv", LARGE_ROWS)
    with path.open("a") as handle:
        handle.write("1,2,abc,4,5,6,7,8,9,10\n")

    with pytest.raises(WorkbookError) as caught:
        read_csv_cells(path, HEADERS)

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"'{path}' is refused as too costly to read record by record.")
