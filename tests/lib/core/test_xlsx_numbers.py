"""The XML number parser against calamine: the same cells from plain sheets, and a decline
(so calamine, then openpyxl, decide as before) for anything else.

Each workbook is read twice through `read_xlsx_cells`: as it is, and with the parser switched
off, which leaves the calamine path the reader had before it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openpyxl
import pytest

import lib.core.table_files as table_files
from lib.core.table_files import Cells, NumericCells, read_xlsx_cells
from lib.core.xlsx_numbers import NotNumbers, read_part_numbers, read_plain_numbers
from lib.energy.constants import WORKBOOK as ENERGY_WORKBOOK
from tests.fixtures.energy import HEADERS
from tests.fixtures.hostile import SHEET_XML, craft_xlsx

NAMES = ("A", "B", "C")


def header() -> str:
    cells = "".join(
        f'<c r="{letter}1" t="inlineStr"><is><t>{letter}</t></is></c>' for letter in NAMES
    )
    return f'<row r="1">{cells}</row>'


def row(number: int, *cells: str) -> str:
    """A row whose cells are given as their XML after the reference: ``'><v>1</v></c>'``."""
    body = "".join(
        f'<c r="{letter}{number}"{cell}' for letter, cell in zip(NAMES, cells, strict=False)
    )
    return f'<row r="{number}">{body}</row>'


def number(value: str) -> str:
    return f"><v>{value}</v></c>"


def numbers(count: int, *, first: int = 2) -> list[str]:
    return [
        row(index, *(number(str(index * 10 + k)) for k in range(3)))
        for index in range(first, first + count)
    ]


def read_both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """What `read_xlsx_cells` returns with the XML parser, and with calamine alone."""
    parsed = read_xlsx_cells(path, NAMES)
    with monkeypatch.context() as patch:
        patch.setattr(table_files, "read_part_numbers", lambda *_: None)
        calamine = read_xlsx_cells(path, NAMES)
    return parsed, calamine


def parses(path: Path) -> bool:
    """Whether the XML parser itself reads the sheet (header in row 1, columns A..C)."""
    book = openpyxl.load_workbook(path, read_only=True)
    dates = set(book._date_formats) | set(book._timedelta_formats)
    book.close()
    try:
        return read_part_numbers(path.read_bytes(), SHEET_XML, 1, (0, 1, 2), dates) is not None
    except NotNumbers:
        return False


def assert_same(parsed: object, calamine: object) -> None:
    assert type(parsed) is type(calamine)
    if isinstance(parsed, NumericCells) and isinstance(calamine, NumericCells):
        assert (parsed.first_row, parsed.whole_as_int) == (
            calamine.first_row,
            calamine.whole_as_int,
        )
        for ours, theirs in zip(parsed.numbers, calamine.numbers, strict=True):
            assert ours.dtype == theirs.dtype == np.float64
            np.testing.assert_array_equal(ours, theirs)
            assert np.array_equal(np.signbit(ours), np.signbit(theirs))
    else:
        assert parsed == calamine


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(numbers(5), id="integers"),
        pytest.param(
            [
                row(2, number("-1.5"), number("2.5E-3"), number("1E+20")),
                row(3, number("0.1"), number("-0"), number("6.0221408570000002E+23")),
                row(
                    4, number("3.3333333333333335"), number("+7"), number("1.7976931348623157E308")
                ),
            ],
            id="exponents, negatives, 17 digits",
        ),
        pytest.param(
            [
                row(2, ' s="0"><v>1</v></c>', ' t="n"><v>2</v></c>', ' s="0" t="n"><v>3</v></c>'),
                row(3, ' t="n" s="0"><v>4</v></c>', number("5"), number("6")),
            ],
            id="style and number type",
        ),
        pytest.param(
            [*numbers(3), row(5, "/>", ' s="0"/>', "/>"), '<row r="9"/>'],
            id="blank rows after the data",
        ),
        pytest.param(
            [row(2, number("1"), number("2"), number("3"), number("4")), *numbers(2, first=3)],
            id="values in an unwanted column",
        ),
    ],
)
def test_plain_sheets_read_as_calamine_reads_them(
    rows: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = craft_xlsx(tmp_path / "t.xlsx", [header(), *rows])

    parsed, calamine = read_both(path, monkeypatch)

    assert parses(path)
    assert isinstance(parsed, NumericCells)
    assert_same(parsed, calamine)


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param([*numbers(2), row(5, number("1"), number("2"), number("3"))], id="blank row"),
        pytest.param(
            [*numbers(2), row(4, number("1"), ' t="inlineStr"><is><t>x</t></is></c>', number("3"))],
            id="text",
        ),
        pytest.param(
            [*numbers(2), row(4, number("1"), "><f>1+1</f><v>2</v></c>", number("3"))], id="formula"
        ),
        pytest.param(
            [*numbers(2), row(4, number("1"), ' t="str"><v>2</v></c>', number("3"))],
            id="formula text",
        ),
        pytest.param(
            [*numbers(2), row(4, number("1"), ' t="b"><v>1</v></c>', number("3"))], id="boolean"
        ),
        pytest.param(
            [*numbers(2), row(4, number("1"), ' t="e"><v>#N/A</v></c>', number("3"))], id="error"
        ),
        pytest.param(
            [*numbers(2), row(4, number("1"), number("1E999"), number("3"))], id="overflow"
        ),
        pytest.param([*numbers(2), row(4, number("1"), number(" 2"), number("3"))], id="space"),
        pytest.param([*numbers(2), row(4, number("1"), number(""), number("3"))], id="empty value"),
        pytest.param([*numbers(2), row(4, number("1"), number("2"))], id="short last row"),
        pytest.param(
            ['<row r="2"><c r="A3"><v>1</v></c><c r="B3"><v>2</v></c><c r="C3"><v>3</v></c></row>'],
            id="cell outside its row",
        ),
        pytest.param([*numbers(2), "<!-- a comment -->"], id="comment"),
    ],
)
def test_anything_else_is_left_to_calamine_and_openpyxl(
    rows: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = craft_xlsx(tmp_path / "t.xlsx", [header(), *rows])

    parsed, calamine = read_both(path, monkeypatch)

    assert not parses(path)
    assert_same(parsed, calamine)


def test_shared_strings_and_date_styles_are_left_to_the_other_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """openpyxl writes text as shared strings (``t="s"``) and styles every dated cell."""
    for value, number_format in (("text", "General"), (45000, "yyyy-mm-dd")):
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(list(NAMES))
        sheet.append([1, 2, 3])
        sheet.append([4, value, 6])
        sheet["B3"].number_format = number_format
        path = tmp_path / f"{number_format}.xlsx"
        book.save(path)

        parsed, calamine = read_both(path, monkeypatch)

        assert not parses(path)
        assert isinstance(parsed, Cells)
        assert_same(parsed, calamine)


def test_a_workbook_saved_by_openpyxl_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """openpyxl writes ``s`` and ``t="n"`` on styled number cells."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(NAMES))
    for index in range(20):
        sheet.append([index, index / 7, -index * 1e-9])
    sheet["B5"].number_format = "0.00"
    path = tmp_path / "t.xlsx"
    book.save(path)

    parsed, calamine = read_both(path, monkeypatch)

    assert parses(path)
    assert_same(parsed, calamine)


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    return (data[start : start + size] for start in range(0, len(data), size))


@pytest.mark.parametrize("size", [1, 7, 64, 1000])
def test_chunk_boundaries_do_not_change_what_is_read(tmp_path: Path, size: int) -> None:
    path = craft_xlsx(tmp_path / "t.xlsx", [header(), *numbers(40)])
    with zipfile.ZipFile(path) as archive:
        xml = archive.read(SHEET_XML)

    whole = read_plain_numbers([xml], 1, (2, 0), ())
    cut = read_plain_numbers(pieces(xml, size), 1, (2, 0), ())

    assert whole is not None and cut is not None
    np.testing.assert_array_equal(whole[0], np.arange(2, 42) * 10 + 2)
    np.testing.assert_array_equal(whole[1], np.arange(2, 42) * 10)
    for one, other in zip(whole, cut, strict=True):
        np.testing.assert_array_equal(one, other)


@pytest.mark.parametrize(
    ("cell", "at"),
    [
        (' t="s"><v>0</v></c>', 4),
        (' t="inlineStr"><is><t>x</t></is></c>', 4),
        (' t="b"><v>1</v></c>', 4),
        ("><v>x</v></c>", 4),
        ("/>", 3),
    ],
    ids=["shared string", "inline string", "boolean", "text as a number", "blank cell"],
)
def test_text_or_a_blank_below_the_header_spares_calamine(cell: str, at: int) -> None:
    """calamine would decline these too, after seconds on a million rows."""
    rows = [
        header(),
        *numbers(at - 2),
        row(at, number("1"), cell, number("3")),
        *numbers(2, first=at + 1),
    ]
    xml = "".join(rows).encode()

    with pytest.raises(NotNumbers):
        read_plain_numbers(pieces(xml, 64), 1, (0, 1, 2), ())


@pytest.mark.data
def test_the_real_workbook_saved_by_excel_is_parsed(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Excel writes shared-string headers, ``s`` on every cell, and a second sheet."""
    path = shared_data / ENERGY_WORKBOOK.mirror_path
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        assert SHEET_XML in archive.namelist()
    plain = read_part_numbers(data, SHEET_XML, 1, range(len(HEADERS)), ())

    parsed = read_xlsx_cells(path, HEADERS)
    with monkeypatch.context() as patch:
        patch.setattr(table_files, "read_part_numbers", lambda *_: None)
        calamine = read_xlsx_cells(path, HEADERS)

    assert plain is not None and len(plain[0]) == 768
    assert_same(parsed, calamine)
