"""Parquet page headers, read without decoding a page: what each page will cost to decode.

A Parquet footer's sizes are only a summary; Arrow allocates from each page's own header (the
decompressed size, the number of values). A 7 kB file whose footer declares 100 bytes can
hold a zstd page that inflates to 200 MB, and an all-null page can declare 67 million values
in a few bytes of run-length levels. So a reader that must bound memory walks the headers
first: each is a small Thrift struct (compact protocol) in front of its page, and the next
header starts right after the page's compressed bytes.

Only the fields needed for sizing are kept; every other field is skipped by its wire type,
so headers from newer writers still read. Nothing here allocates more than a header's few
fields, whatever the bytes claim.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

DATA_PAGE = 0
DICTIONARY_PAGE = 2
DATA_PAGE_V2 = 3

MAX_HEADER_DEPTH = 8
"""Deepest struct nesting read; a page header nests two levels (page header, statistics)."""
MAX_HEADER_FIELDS = 256
"""Most fields (at any depth) read in one header; writers put about twenty there."""

# Compact protocol wire types (Thrift's TCompactProtocol).
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY = 1, 2, 3, 4, 5, 6, 7, 8
_LIST, _SET, _MAP, _STRUCT = 9, 10, 11, 12
_DOUBLE_BYTES = 8
_LONG_LIST = 15
_MAX_VARINT_BYTES = 10
_VARINT_PAYLOAD = 0x7F
_VARINT_MORE = 0x80

# PageHeader's field ids, and num_values's id inside each nested (per-kind) header.
_TYPE, _UNCOMPRESSED_SIZE, _COMPRESSED_SIZE = 1, 2, 3
_NESTED_HEADERS = {5: DATA_PAGE, 7: DICTIONARY_PAGE, 8: DATA_PAGE_V2}
_NUM_VALUES = 1


class PageHeaderError(ValueError):
    """Bytes where a page header should be are not one; the message says what is wrong."""


@dataclass(frozen=True)
class PageHeader:
    """The sizing fields of one page header.

    Attributes:
        kind: `DATA_PAGE`, `DICTIONARY_PAGE`, `DATA_PAGE_V2`, or another Parquet page type.
        compressed_size: bytes of the page after its header, as stored.
        uncompressed_size: bytes Arrow allocates to decompress it.
        num_values: values (nulls included) in a data page, entries in a dictionary page.
        offset: where the header starts in the file.
    """

    kind: int
    compressed_size: int
    uncompressed_size: int
    num_values: int
    offset: int


def read_page_headers(data: bytes | memoryview, start: int, end: int) -> Iterator[PageHeader]:
    """Yield the headers of the pages stored in ``data[start:end]`` (one column chunk).

    Raises:
        PageHeaderError: a header is malformed or cut off, declares a negative size, or its
            page runs past `end`.
    """
    view = memoryview(data)[:end]
    position = start
    while position < end:
        reader = _Reader(view, position)
        fields, num_values = reader.page_header()
        header = PageHeader(
            kind=fields.get(_TYPE, -1),
            compressed_size=fields.get(_COMPRESSED_SIZE, -1),
            uncompressed_size=fields.get(_UNCOMPRESSED_SIZE, -1),
            num_values=num_values,
            offset=position,
        )
        if header.compressed_size < 0 or header.uncompressed_size < 0:
            raise PageHeaderError(
                f"Expected page sizes of at least 0 at offset {position:,}. Received: "
                f"compressed {header.compressed_size:,}, uncompressed {header.uncompressed_size:,}"
            )
        position = reader.position + header.compressed_size
        if position > end:
            raise PageHeaderError(
                f"Expected the page at offset {header.offset:,} to end within its column chunk "
                f"(by offset {end:,}). Received: a page ending at offset {position:,}"
            )
        yield header


class _Reader:
    """A cursor over compact-protocol bytes that keeps a page header's sizing fields."""

    def __init__(self, view: memoryview, position: int) -> None:
        self.view = view
        self.position = position
        self.fields_read = 0

    def page_header(self) -> tuple[dict[int, int], int]:
        """The page header's own integer fields, and num_values from its nested header."""
        kept: dict[int, int] = {}
        num_values = 0
        for field_id, wire_type in self._fields():
            if wire_type == _STRUCT and field_id in _NESTED_HEADERS:
                num_values = self._integer_fields(depth=1).get(_NUM_VALUES, 0)
            elif wire_type in (_I16, _I32, _I64):
                kept[field_id] = self._zigzag()
            else:
                self._skip(wire_type, depth=1)
        return kept, num_values

    def _integer_fields(self, depth: int) -> dict[int, int]:
        kept: dict[int, int] = {}
        for field_id, wire_type in self._fields():
            if wire_type in (_I16, _I32, _I64):
                kept[field_id] = self._zigzag()
            else:
                self._skip(wire_type, depth + 1)
        return kept

    def _fields(self) -> Iterator[tuple[int, int]]:
        """(field id, wire type) of each field of the struct at the cursor, up to its stop."""
        field_id = 0
        while (head := self._byte()) != 0:
            self._count_field()
            delta, wire_type = head >> 4, head & 0x0F
            field_id = field_id + delta if delta else self._zigzag()
            yield field_id, wire_type

    def _count_field(self) -> None:
        """Every field and collection element counts, so a header's cost is bounded."""
        self.fields_read += 1
        if self.fields_read > MAX_HEADER_FIELDS:
            raise PageHeaderError(
                f"Expected a page header of at most {MAX_HEADER_FIELDS} fields and elements "
                f"(MAX_HEADER_FIELDS). Received: more, by offset {self.position:,}"
            )

    def _skip(self, wire_type: int, depth: int) -> None:
        if depth > MAX_HEADER_DEPTH:
            raise PageHeaderError(
                f"Expected page header structs nested at most {MAX_HEADER_DEPTH} deep "
                f"(MAX_HEADER_DEPTH). Received: deeper, at offset {self.position:,}"
            )
        if wire_type in (_TRUE, _FALSE):
            return
        if wire_type == _BYTE:
            self._take(1)
        elif wire_type in (_I16, _I32, _I64):
            self._varint()
        elif wire_type == _DOUBLE:
            self._take(_DOUBLE_BYTES)
        elif wire_type == _BINARY:
            self._take(self._varint())
        elif wire_type in (_LIST, _SET, _MAP):
            self._skip_collection(wire_type, depth)
        elif wire_type == _STRUCT:
            for _, inner in self._fields():
                self._skip(inner, depth + 1)
        else:
            raise PageHeaderError(
                f"Expected a Thrift compact wire type at offset {self.position - 1:,}. "
                f"Received: {wire_type}"
            )

    def _skip_collection(self, wire_type: int, depth: int) -> None:
        if wire_type == _MAP:
            size = self._varint()
            kinds = self._byte() if size else 0
            element_types: tuple[int, ...] = (kinds >> 4, kinds & 0x0F)
        else:
            head = self._byte()
            size = head >> 4 if head >> 4 != _LONG_LIST else self._varint()
            element_types = (head & 0x0F,)
        for _ in range(size):
            for element_type in element_types:
                self._count_field()
                if element_type in (_TRUE, _FALSE):
                    self._take(1)  # in a collection a boolean takes a byte
                else:
                    self._skip(element_type, depth + 1)

    def _zigzag(self) -> int:
        value = self._varint()
        return (value >> 1) ^ -(value & 1)

    def _varint(self) -> int:
        value = shift = 0
        for _ in range(_MAX_VARINT_BYTES):
            byte = self._byte()
            value |= (byte & _VARINT_PAYLOAD) << shift
            if not byte & _VARINT_MORE:
                return value
            shift += 7
        raise PageHeaderError(
            f"Expected a varint of at most {_MAX_VARINT_BYTES} bytes. Received: a longer one "
            f"ending after offset {self.position:,}"
        )

    def _byte(self) -> int:
        return int(self._take(1)[0])

    def _take(self, count: int) -> memoryview:
        end = self.position + count
        if end > len(self.view):
            raise PageHeaderError(
                f"Expected a complete page header. Received: one cut off at offset "
                f"{len(self.view):,} (its column chunk ends there)"
            )
        taken = self.view[self.position : end]
        self.position = end
        return taken
