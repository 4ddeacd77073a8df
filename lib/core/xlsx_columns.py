"""Number columns read by native parsers into NumPy: calamine for sheets, Arrow for CSV.

The common case of a large workbook is a plain sheet of numbers; openpyxl would spend 3-17 µs
on each of its millions of XML elements, calamine spends about 0.3 µs and hands back Arrow
columns. This module only reads: the file-safety checks that make calamine's work bounded
(element counts, the rectangle it allocates, row numbers) run before, in
`lib.core.table_files`, and anything that is not a column of numbers is declined (``None``)
so that the caller can report it cell by cell.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def read_number_columns(
    data: bytes, sheet: str, header_row: int, positions: Sequence[int]
) -> list[pa.Array] | None:
    """The columns at `positions` (0-based) of `sheet` below `header_row`, if all numbers.

    Row ``i`` of each array is Excel row ``header_row + 1 + i``; a blank cell is a null. Every
    row of the sheet's XML is read, trailing blank ones included (the caller cuts them).

    Returns:
        One float64 array per position, or ``None`` when calamine cannot read the sheet or a
        column holds anything but numbers and blanks (text, booleans, dates, error values:
        calamine turns an error value into a blank, so only a cell-by-cell reading can name
        it).
    """
    import fastexcel  # a Rust extension, imported only when a workbook is read

    try:
        batch = fastexcel.read_excel(data).load_sheet(
            sheet,
            header_row=None,
            skip_rows=header_row,
            use_columns=list(positions),
            eager=True,
            schema_sample_rows=None,
            dtype_coercion="strict",
        )
    except fastexcel.FastExcelError:
        return None
    columns = []
    for column in batch.columns:
        if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
            return None
        columns.append(column.cast(pa.float64()))
    return columns


def read_csv_numbers(
    data: bytes, header_row: int, width: int, positions: Sequence[int]
) -> tuple[np.ndarray, ...] | None:
    """The columns at `positions` of a CSV file's records below `header_row`, if all numbers.

    Arrow parses every record after the first `header_row` lines; each must hold `width`
    fields and be on one line, and each wanted field must spell a number. Anything else
    (a blank line or cell, a short record, text) declines with ``None``.
    """
    import pyarrow.csv as pa_csv

    names = [f"f{index}" for index in range(width)]
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(data),
            read_options=pa_csv.ReadOptions(
                skip_rows=header_row, column_names=names, use_threads=False
            ),
            parse_options=pa_csv.ParseOptions(ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                include_columns=[names[index] for index in positions],
                column_types=dict.fromkeys(names, pa.float64()),
                null_values=[],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, ValueError):
        return None
    return tuple(column.to_numpy() for column in table.combine_chunks().columns)


def as_floats(column: pa.Array, rows: int) -> np.ndarray:
    """The first `rows` values of a null-free float64 column, as a NumPy array."""
    return column.slice(0, rows).to_numpy(zero_copy_only=False)
