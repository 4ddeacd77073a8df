"""What one inflated workbook part holds, measured in one streaming pass before any parser runs.

`lib.core.table_files` inflates every zip entry once, in chunks, to count XML elements (parse
time grows with elements, not bytes). The same pass measures what calamine would allocate for a
worksheet part: calamine keeps the whole rectangle from A1 to the last row and column in
memory, 32 bytes a cell, so two cells in A1 and XFD1048576 would ask for 550 GB. The last row
and column can be bounded from the XML alone when every row and cell names its position the way
spreadsheets write it (``<row r="7">``, ``<c r="B7">``: the position first, double-quoted, no
namespace prefix). Such a part is *plain*; any other goes to openpyxl, whose cost
`lib.core.table_files.MAX_PARSED_ELEMENTS` bounds.

The pass is vectorised with NumPy over each chunk's ``<`` positions (a million-row sheet has
21 million): a regular expression per tag took 10-20 s on such a sheet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

NARROW_COLUMNS = 16
"""Columns A..P: calamine reads a sheet only if no cell lies right of them, so that it holds
at most Excel's 1,048,576 rows of sixteen cells (540 MB) whatever the sheet claims."""
DEEPEST_ROW = 1_048_576
"""Excel's last row: a cell naming a row below it makes a part not plain."""

_KEPT_TAIL_BYTES = 4_096
"""Bytes carried from one chunk to the next so that no tag shorter than this is cut."""
_ROW_NUMBER_BYTES = 14
"""Digits read for a row number, and its closing quote: up to 13 digits (10**13 > Excel's)."""
_CELL_ROW_DIGITS = 7
"""Digits of Excel's last row; a cell's row is parsed only when it has this many."""
_LT, _SLASH, _COLON, _QUOTE = (ord(char) for char in '</:"')
_DELIMITER = np.isin(np.arange(256), list(b" \t\r\n/>"))
"""Which bytes may end a tag's name (a lookup table, indexed by byte)."""
_DIGIT = np.isin(np.arange(256), list(b"0123456789"))
_CELL_OPENING = b'c r="'
_ROW_OPENING = b'row r="'
_LOOKAHEAD = len(_ROW_OPENING) + _ROW_NUMBER_BYTES + 2
"""Bytes looked at after each ``<``; zero padding covers a chunk's end."""


@dataclass
class PartScan:
    """Counts of one zip entry's XML.

    Attributes:
        elements: start tags, comments and CDATA sections (each opens with ``<``).
        row_numbers: the ``r`` of each ``<row r="...">``, in file order, in pieces.
        plain: every row and cell tag names its position first, in double quotes, without a
            namespace prefix, no cell lies right of column P (`NARROW_COLUMNS`) or below
            Excel's last row: calamine may read it.
    """

    elements: int = 0
    row_numbers: list[np.ndarray] = field(default_factory=list)
    plain: bool = True

    @property
    def numbers(self) -> np.ndarray:
        """All row numbers as one int64 array."""
        if not self.row_numbers:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(self.row_numbers)

    def add(self, text: bytes, end: int) -> None:
        """Count the tags opening in ``text[:end]``; ``text[end:]`` is only looked into."""
        window = np.frombuffer(text + bytes(_LOOKAHEAD), dtype=np.uint8)
        opening = np.flatnonzero(window[:end] == _LT)
        first = window[opening + 1]
        self.elements += int(np.count_nonzero(first != _SLASH))
        if not self.plain:
            return
        numbers = _row_numbers(window, opening[first == ord("r")])
        self.plain = (
            numbers is not None
            and _plain_cells(window, opening[first == ord("c")])
            and _unprefixed(window, end)
        )
        if self.plain and numbers is not None and numbers.size:
            self.row_numbers.append(numbers)


def is_named(window: np.ndarray, starts: np.ndarray, name: bytes) -> np.ndarray:
    """Which of the tags opening at `starts` are named `name` (then a delimiter)."""
    named = _DELIMITER[window[starts + 1 + len(name)]]
    for offset, char in enumerate(name):
        named &= window[starts + 1 + offset] == char
    return named


def _follows(window: np.ndarray, starts: np.ndarray, text: bytes) -> bool:
    """Whether every tag opening at `starts` opens with `text` after its "<"."""
    return all(
        bool(np.all(window[starts + 1 + offset] == char)) for offset, char in enumerate(text)
    )


def _plain_cells(window: np.ndarray, starts: np.ndarray) -> bool:
    """Every cell tag opens ``<c r="`` and one letter within A..P (`NARROW_COLUMNS`), then at
    most seven digits naming a row up to Excel's last."""
    cells = starts[is_named(window, starts, b"c")]
    if not _follows(window, cells, _CELL_OPENING):
        return False
    column = window[cells + 1 + len(_CELL_OPENING)]
    if not np.all((column >= ord("A")) & (column < ord("A") + NARROW_COLUMNS)):
        return False
    digits = cells + 2 + len(_CELL_OPENING)  # where each cell's row number starts
    if not np.all(_DIGIT[window[digits]]):
        return False
    long = digits[_DIGIT[window[digits + _CELL_ROW_DIGITS - 1]]]  # seven digits or more
    rows = digit_values(window[long[:, None] + np.arange(_CELL_ROW_DIGITS + 1)])
    return rows is not None and bool(np.all(rows <= DEEPEST_ROW))


def _row_numbers(window: np.ndarray, starts: np.ndarray) -> np.ndarray | None:
    """The numbers of the row tags, or ``None`` if one does not open ``<row r="<digits>"``."""
    rows = starts[is_named(window, starts, b"row")]
    if not _follows(window, rows, _ROW_OPENING):
        return None
    digits = rows + 1 + len(_ROW_OPENING)
    return digit_values(window[digits[:, None] + np.arange(_ROW_NUMBER_BYTES)])


def digit_values(digits: np.ndarray) -> np.ndarray | None:
    """Each line's leading decimal digits as an int64, when closed by a double quote within
    the line; ``None`` if a line has no digits or no closing quote (it may be longer)."""
    is_digit = _DIGIT[digits]
    length = np.argmin(is_digit, axis=1)  # the first non-digit; 0 if all are digits
    closed = digits[np.arange(len(digits)), length] == _QUOTE
    if not np.all(closed & (length > 0)):
        return None
    exponent = length[:, None] - 1 - np.arange(digits.shape[1])[None, :]
    place = np.where(exponent >= 0, 10 ** np.clip(exponent, 0, None), 0)
    return np.sum((digits.astype(np.int64) - ord("0")) * place, axis=1)


def _unprefixed(window: np.ndarray, end: int) -> bool:
    """No ``<prefix:c`` or ``<prefix:row`` tag: calamine matches tags by their local name."""
    colons = np.flatnonzero(window[:end] == _COLON)
    return not (is_named(window, colons, b"c").any() or is_named(window, colons, b"row").any())


def scan_chunks(chunks: Iterable[bytes], limit: int) -> PartScan:
    """Measure an entry's inflated chunks, stopping once its elements pass `limit`.

    Each chunk is cut before its last ``<`` and the cut carried into the next, so a tag split
    by a chunk boundary is seen whole. A carried stretch longer than `_KEPT_TAIL_BYTES` (a
    long text without markup) keeps only its end: no tag this module looks for is that long.
    """
    scan = PartScan()
    tail = b""
    for chunk in chunks:
        text = tail + chunk
        cut = max(text.rfind(b"<"), len(text) - _KEPT_TAIL_BYTES, 0)
        scan.add(text, cut)
        tail = text[cut:]
        if scan.elements > limit:
            return scan
    scan.add(tail, len(tail))
    return scan
