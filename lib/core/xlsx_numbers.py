"""Number columns of a plain worksheet part, parsed from its XML in bounded chunks.

calamine holds every cell of a sheet twice (the cells it collects, then the rectangle it
copies them into): about 720 MB for a million rows of ten numbers, and 57 % of the time to
read them. A sheet of numbers as spreadsheets write it needs none of that: each wanted cell
is ``<c r="B7"><v>0.98</v></c>`` (maybe with a style ``s="3"`` or the number type ``t="n"``),
so its column, row and value text can be found by position, for all cells of a chunk at once
with NumPy, and the value texts converted in one call to Arrow's number parser. Memory is the
chunk's and the float64 columns'.

Only the simplest form is taken. Anything else that calamine may still read as numbers (a
formula, a date style, an empty value, whitespace between tags, comments or CDATA anywhere,
an unknown attribute, a cell outside its row or out of order) declines with ``None``, and the
caller reads the sheet the way it did before this module: calamine, then openpyxl. A wanted
cell that calamine would not read as a number either (typed as text, boolean, error or date
text, a value spelling no number, a blank before the last data row) raises `NotNumbers`, so
that the caller goes straight to openpyxl, which names it.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lib.core.inflate import inflated_chunks
from lib.core.xlsx_scan import NARROW_COLUMNS, digit_values, is_named

CHUNK_BYTES = 8 * 2**20
"""Inflated bytes read at a time: NumPy's work per chunk holds about ten times this."""
MAX_CARRIED_BYTES = 64 * 2**20
"""Most bytes carried to the next chunk while waiting for a cell to start; a stretch this long
without one (a huge inline string in an unwanted cell) declines instead of growing."""

_CELL_OPENING = b'<c r="'
_LT, _GT, _SLASH, _QUOTE, _EQUALS, _SPACE = (ord(char) for char in '<>/"= ')
_MAX_VALUE_WORDS = 4
"""Most eight-byte words gathered for a value: texts up to 32 bytes (Excel's longest number,
``-2.2250738585072014E-308``, has 24)."""
_ROW_DIGITS = 8
"""Bytes read for a row number and its closing quote (Excel's last row has seven digits)."""
_STYLE_DIGITS = 8
"""Bytes read for a style index and its closing quote."""
_PLAIN_TAG_BYTES = len(_CELL_OPENING) + len('A">')
"""``<c r="`` and a column letter, a closing quote and ``>``; the row's digits come on top."""
_NUMBER_TYPE = b' t="n"'
_STYLE_OPENING_BYTES = len(' s="')
_PADDING = bytes(64)
"""Zeros after a chunk so that looking a few bytes past its last tag stays in bounds."""


class NotNumbers(Exception):
    """A wanted cell below the header is certainly no number, or certainly blank, so that
    calamine would decline the sheet too: only a cell-by-cell reading can name it."""


@dataclass
class _Columns:
    """The values found so far, and what the next wanted cell must be."""

    header_row: int
    wanted: np.ndarray  # sheet columns (0-based), ascending: the order cells come in
    date_styles: np.ndarray
    found: int = 0  # wanted cells with a value below the header so far
    row: int = 0  # the row tag the next chunk's first cells lie in: its number,
    digits: int = 0  # its count of digits,
    named: int = 0  # and its digits as `_words` holds them (0: no row yet)
    pieces: list[list[np.ndarray]] = field(default_factory=list)

    def expect(self, rows: np.ndarray, columns: np.ndarray) -> bool:
        """Whether these cells continue a full rectangle from the row below the header.

        Raises:
            NotNumbers: they come in order but skip a cell: a blank inside the data.
        """
        width = len(self.wanted)
        places = (rows - self.header_row - 1) * width + np.searchsorted(self.wanted, columns)
        order = self.found + np.arange(len(rows))
        self.found += len(rows)
        if np.array_equal(places, order):
            return True
        if np.all(np.diff(places) > 0) and (not len(places) or places[0] >= order[0]):
            raise NotNumbers
        return False

    def add(self, values: np.ndarray, first: int) -> None:
        """File one chunk's values, the first of which is wanted cell number `first`.

        Copied per column, so that no chunk's array outlives its column's concatenation.
        """
        width = len(self.wanted)
        for index, piece in enumerate(self.pieces):
            piece.append(values[(index - first) % width :: width].copy())


def read_part_numbers(
    data: bytes,
    part: str,
    header_row: int,
    positions: Sequence[int],
    date_styles: Iterable[int],
) -> tuple[np.ndarray, ...] | None:
    """`read_plain_numbers` over zip entry `part` of the workbook `data`, inflated a chunk at
    a time (the caller's checks have inflated it once already, intact and within limits)."""
    with (
        zipfile.ZipFile(io.BytesIO(data)) as archive,
        inflated_chunks(archive, part, CHUNK_BYTES) as chunks,
    ):
        return read_plain_numbers(chunks, header_row, positions, date_styles)


def read_plain_numbers(
    chunks: Iterable[bytes],
    header_row: int,
    positions: Sequence[int],
    date_styles: Iterable[int],
) -> tuple[np.ndarray, ...] | None:
    """The columns at `positions` (0-based) below `header_row`, if all are plain numbers.

    `chunks` are the inflated bytes of a worksheet part that `lib.core.xlsx_scan` found plain
    and whose row numbers rise; `date_styles` the style indices openpyxl reads as dates or
    durations (a number in such a cell is a date, which the calamine path declines too).

    Returns:
        One float64 array per position, element 0 in row ``header_row + 1``, up to the last
        row holding a wanted value, every cell a finite number; ``None`` for anything else.

    Raises:
        NotNumbers: a wanted cell is typed other than a number (``t="s"``, ``"str"``,
            ``"inlineStr"``, ``"b"``, ``"e"``, ``"d"``), holds a value that spells no number,
            or is blank before the last data row.
    """
    wanted = np.array(sorted(positions), dtype=np.int64)
    if not len(wanted) or wanted[-1] >= NARROW_COLUMNS:
        return None
    state = _Columns(header_row, wanted, np.array(sorted(set(date_styles)), dtype=np.int64))
    state.pieces = [[] for _ in wanted]
    tail = b""
    for chunk in chunks:
        text = b"".join((tail, chunk, _PADDING))  # one copy: the chunk, padded
        cut = max(text.rfind(_CELL_OPENING, 0, len(text) - len(_PADDING)), 0)
        if cut == 0 and len(text) > MAX_CARRIED_BYTES:
            return None
        if cut and not _read_chunk(text, cut, state):
            return None
        tail = text[cut : -len(_PADDING)]
    if not _read_chunk(tail + _PADDING, len(tail), state) or not state.found:
        return None
    if state.found % len(wanted):
        raise NotNumbers  # the last row misses a wanted cell
    columns = []
    for piece in state.pieces:
        columns.append(np.concatenate(piece))
        piece.clear()
    return tuple(columns[int(np.searchsorted(wanted, position))] for position in positions)


def _read_chunk(text: bytes, end: int, state: _Columns) -> bool:
    """Read the wanted cells of the tags opening in ``text[:end]``; False declines.

    `text` ends in `_PADDING`, past the bytes of the part it holds.
    """
    window = np.frombuffer(text, dtype=np.uint8)
    words = _words(window)
    opening = np.flatnonzero(window[:end] == _LT)
    first = window[opening + 1]
    if np.any(first == ord("!")):
        return False  # a comment or CDATA section may hide or fake cells
    tags = np.append(opening, [end] * 3)  # `end` stands for tags past the chunk
    cells = np.flatnonzero(first == ord("c"))
    cells = cells[window[opening[cells] + 2] == _SPACE]  # plain: every cell opens '<c r="'
    placed = _rows_of(window, words, opening, cells, state)
    if placed is None:
        return False
    rows, digits = placed
    lookup = np.zeros(256, dtype=bool)
    lookup[state.wanted + ord("A")] = True
    chosen = lookup[window[opening[cells] + len(_CELL_OPENING)]] & (rows > state.header_row)
    cells, rows, digits = cells[chosen], rows[chosen], digits[chosen]
    closing = tags[cells + 1] - 1  # the cell tag's ">"
    if np.any(window[closing] != _GT):
        return False
    valued = window[closing - 1] != _SLASH  # "<c .../>" is a blank cell
    cells, rows, digits, closing = cells[valued], rows[valued], digits[valued], closing[valued]
    starts = opening[cells]
    columns = window[starts + len(_CELL_OPENING)].astype(np.int64) - ord("A")
    if not _plain_attributes(window, starts, closing, digits, state.date_styles):
        return False
    if not _holds_one_value(words, tags, cells):
        return False
    first_found = state.found
    if not state.expect(rows, columns):
        return False
    values = _parse_values(words, tags[cells + 1] + len(b"<v>"), tags[cells + 2])
    if values is None:
        return False
    state.add(values, first_found)
    return True


def _words(window: np.ndarray) -> np.ndarray:
    """Every run of eight bytes of `window` as one little-endian integer (a view, no copy):
    ``words[i]`` compares a short text at ``window[i]`` in one operation."""
    return np.ndarray((len(window) - 7,), dtype="<u8", buffer=window, strides=(1,))


def _prefix(text: bytes) -> tuple[int, int]:
    """`text` (at most 8 bytes) as `_words` holds it, and the mask that picks it."""
    return int.from_bytes(text, "little"), 2 ** (8 * len(text)) - 1


_VALUE, _VALUE_END, _CELL_END = _prefix(b"<v>"), _prefix(b"</v>"), _prefix(b"</c>")
_DIGITS_MASK = np.array([2 ** (8 * (count + 1)) - 1 for count in range(8)], dtype=np.uint64)
"""Masks of a row number's digits and its closing quote, by the count of digits."""


def _rows_of(
    window: np.ndarray, words: np.ndarray, opening: np.ndarray, cells: np.ndarray, state: _Columns
) -> tuple[np.ndarray, np.ndarray] | None:
    """The row of each cell and its count of digits, if every cell names the row whose tag it
    lies in (calamine places a cell by its own reference, openpyxl by its row's: where they
    differ, the caller's readers decide); ``None`` otherwise."""
    row_tags = opening[window[opening + 1] == ord("r")]
    row_tags = row_tags[is_named(window, row_tags, b"row")]
    numbers = digit_values(window[row_tags[:, None] + len(b'<row r="') + np.arange(_ROW_DIGITS)])
    if numbers is None:
        return None
    digits = np.searchsorted(10 ** np.arange(1, _ROW_DIGITS), numbers, side="right") + 1
    named = words[row_tags + len(b'<row r="')] & _DIGITS_MASK[digits]
    before = np.searchsorted(row_tags, opening[cells])  # row tags before each cell
    numbers = np.concatenate(([state.row], numbers))  # a chunk's first cells: the last row
    digits = np.concatenate(([state.digits], digits))
    named = np.concatenate((np.array([state.named], dtype=np.uint64), named))
    state.row, state.digits, state.named = int(numbers[-1]), int(digits[-1]), int(named[-1])
    cell_digits = digits[before]
    references = words[opening[cells] + len(_CELL_OPENING) + 1] & _DIGITS_MASK[cell_digits]
    if not np.array_equal(references, named[before]):
        return None
    return numbers[before], cell_digits


def _holds_one_value(words: np.ndarray, tags: np.ndarray, cells: np.ndarray) -> bool:
    """Each cell's content is exactly ``<v>...</v></c>``: no formula, no inline string."""
    value, value_end, cell_end = tags[cells + 1], tags[cells + 2], tags[cells + 3]
    return all(
        bool(np.all(words[at] & np.uint64(mask) == np.uint64(text)))
        for at, (text, mask) in ((value, _VALUE), (value_end, _VALUE_END), (cell_end, _CELL_END))
    ) and bool(np.all(value_end > value + len(b"<v>")))


def _plain_attributes(
    window: np.ndarray,
    starts: np.ndarray,
    closing: np.ndarray,
    digits: np.ndarray,
    date_styles: np.ndarray,
) -> bool:
    """Each cell tag holds ``r``, then at most a style that is no date and the number type.

    A tag is exactly as long as those attributes spelled out, each found at its ``=``.
    """
    extra = closing + 1 - starts - _PLAIN_TAG_BYTES - digits
    if not np.any(extra):
        return True
    starts, closing, extra = starts[extra > 0], closing[extra > 0], extra[extra > 0]
    lo, hi = int(starts[0]), int(closing[-1])
    equals = lo + np.flatnonzero(window[lo:hi] == _EQUALS)
    owner = np.searchsorted(starts, equals, side="right") - 1
    equals, owner = equals[equals < closing[owner]], owner[equals < closing[owner]]
    name = window[equals - 1]
    named_r = (name == ord("r")) & (equals == starts[owner] + len(b"<c r"))
    equals, owner, name = equals[~named_r], owner[~named_r], name[~named_r]
    if np.any(window[equals - 2] != _SPACE) or np.any(window[equals + 1] != _QUOTE):
        return False
    is_type, is_style = name == ord("t"), name == ord("s")
    if not np.all(is_type | is_style):
        return False
    types = equals[is_type]
    if np.any(window[types + 2] != ord("n")) or np.any(window[types + 3] != _QUOTE):
        raise NotNumbers  # text, a boolean, an error value, a date as text
    styles = equals[is_style]
    indices = digit_values(window[styles[:, None] + 2 + np.arange(_STYLE_DIGITS)])
    if indices is None or np.any(np.isin(indices, date_styles)):
        return False
    spelled = np.zeros(len(starts), dtype=np.int64)
    np.add.at(spelled, owner[is_type], len(_NUMBER_TYPE))
    style_digits = np.searchsorted(10 ** np.arange(1, _STYLE_DIGITS), indices, side="right") + 1
    np.add.at(spelled, owner[is_style], _STYLE_OPENING_BYTES + style_digits + 1)
    return bool(np.array_equal(spelled, extra))


def _parse_values(words: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray | None:
    """The texts ``window[starts[i]:ends[i]]`` as finite float64 numbers, all in one call.

    Each text is gathered as whole words, as many as the chunk's longest needs, then the
    texts' own bytes are packed into an Arrow binary array and cast to float64: Arrow parses
    numbers with correct rounding and refuses spaces, commas, quotes and words (``nan`` and
    ``inf`` it reads, so non-finite values decline here).

    Raises:
        NotNumbers: a text spells no number.
    """
    count = len(starts)
    if not count:
        return np.zeros(0)
    lengths = ends - starts
    width = (int(lengths.max()) + 7) // 8
    if width > _MAX_VALUE_WORDS:
        return None
    gathered = words[starts[:, None] + 8 * np.arange(width)].view(np.uint8)
    packed = gathered[np.arange(8 * width)[None, :] < lengths[:, None]]
    offsets = np.zeros(count + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    texts = pa.Array.from_buffers(
        pa.binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(packed)]
    )
    try:
        values = pc.cast(texts, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid as exc:  # calamine too reads such a value as text
        raise NotNumbers from exc
    return values if np.all(np.isfinite(values)) else None
