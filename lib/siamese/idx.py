"""IDX (MNIST-format) files -> NumPy arrays -> one Parquet image table with provenance.

An IDX file is a 4-byte magic (two zero bytes, a dtype code, the number of dimensions), one
big-endian uint32 per dimension, then the values in C order, big-endian. Fashion-MNIST ships
them gzip-compressed. Everything read here comes from the network, so the header is checked
(magic, dtype, dimensions, total size against a limit) before a single payload byte is
allocated, and the payload must be exactly as long as the header says.

The image table stores ``pixels`` as ``fixed_size_binary(784)``: Parquet keeps that as one
FIXED_LEN_BYTE_ARRAY column, which reads back as a single contiguous buffer that
``np.frombuffer`` views as ``(n, 784)`` without a copy. On the 60,000 training images it read
about 5x faster (and wrote about 10x faster) than ``fixed_size_list<uint8>[784]``, whose
repetition levels must be decoded value by value.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lib.core.atomic import atomic_path
from lib.core.errors import InputError
from lib.core.provenance import (
    METADATA_KEY,
    PARQUET_COMPRESSION,
    parse_json_metadata,
    read_json_metadata,
)
from lib.siamese.constants import IMAGE_SHAPE, NUM_CLASSES, PIXELS_PER_IMAGE

# dtype code byte -> big-endian NumPy dtype, as the IDX format defines them.
IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAGIC_ZERO_BYTES = b"\x00\x00"
MAGIC_BYTES = 4
DIMENSION_BYTES = 4
MAX_NDIM = 8
# Fashion-MNIST's largest file holds 47,040,000 payload bytes; 256 MiB leaves room for an
# MNIST-like set five times larger and, copies included, stays well inside 1 GB of memory.
DEFAULT_MAX_BYTES = 256 << 20
READ_CHUNK_BYTES = 1 << 22
MAX_DEFLATE_RATIO = 1032
"""Deflate's best compression (258-byte matches at about two bits each): 1 GB of zeros needs
a gzip file of about 1 MB."""
GZIP_MAGIC = b"\x1f\x8b"
GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib parses the gzip header and checks the CRC itself


TABLE_SCHEMA_VERSION = 1
TABLE_KIND = "idx-images"
LABEL_COLUMN = "label"
PIXELS_COLUMN = "pixels"
TABLE_SCHEMA = pa.schema(
    [
        pa.field(LABEL_COLUMN, pa.uint8(), nullable=False),
        pa.field(PIXELS_COLUMN, pa.binary(PIXELS_PER_IMAGE), nullable=False),
    ]
)
SHA256_HEX_CHARS = 64


class IdxFormatError(InputError):
    """A file is not the IDX data (or image table) it claims to be; the message names it."""


def read_idx(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read a gzip-compressed IDX file into a native-byte-order array of the header's shape.

    The gzip stream is inflated by zlib in C, a bounded chunk at a time: Python's `gzip`
    module reads a header's file name byte by byte in Python (20 MB of name took 6 s), and
    would go on into any gzip member appended after the payload.

    Args:
        path: the ``*.gz`` file.
        max_bytes: largest payload the header may claim; guards memory against a corrupt or
            hostile header, since the allocation size comes from the file itself.

    Raises:
        IdxFormatError: when the file is not one gzip stream, the stream is truncated or
            corrupt, the magic, dtype code or dimensions are invalid, the header claims more
            than `max_bytes` or than a gzip stream of the file's size can hold, or the
            payload is shorter or longer than the header says.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        stream = _GzipStream(handle, path)
        dtype, shape = _read_header(stream, path, max_bytes)
        _check_inflatable(path, math.prod(shape) * dtype.itemsize, os.fstat(handle.fileno()))
        payload = np.empty(math.prod(shape) * dtype.itemsize, dtype=np.uint8)
        _read_payload(stream, path, payload)
        stream.check_end()
    return payload.view(dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


class _GzipStream:
    """One gzip member inflated on demand; a read never inflates more than it was asked for."""

    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self.handle = handle
        self.path = path
        self.inflater = zlib.decompressobj(GZIP_WBITS)
        magic = handle.read(len(GZIP_MAGIC))
        if magic != GZIP_MAGIC:
            raise IdxFormatError(
                f"{path}: Expected a complete gzip-compressed IDX file. Received: Not a gzipped "
                f"file (magic 0x{magic.hex()})"
            )
        self.pending = magic

    def read(self, size: int) -> bytes:
        """Up to `size` inflated bytes; fewer only where the gzip stream ends."""
        out = bytearray()
        while len(out) < size and not self.inflater.eof:
            data = self.inflater.unconsumed_tail or self._next_input()
            try:
                out += self.inflater.decompress(data, size - len(out))
            except zlib.error as error:
                raise IdxFormatError(
                    f"{self.path}: Expected a complete gzip-compressed IDX file. Received: "
                    f"corrupt gzip data ({error})"
                ) from error
        return bytes(out)

    def check_end(self) -> None:
        """The member must be complete (zlib checks its CRC) and the last thing in the file."""
        if not self.inflater.eof:
            raise self._truncated()
        extra = len(self.inflater.unused_data) + len(self.handle.read(READ_CHUNK_BYTES))
        if extra:
            raise IdxFormatError(
                f"{self.path}: Expected the file to end with its gzip stream. Received: "
                f"{extra:,} more bytes (another gzip member or junk)"
            )

    def _next_input(self) -> bytes:
        data, self.pending = self.pending or self.handle.read(READ_CHUNK_BYTES), b""
        if not data:
            raise self._truncated()
        return data

    def _truncated(self) -> IdxFormatError:
        return IdxFormatError(
            f"{self.path}: Expected a complete gzip stream; it is truncated or corrupt. "
            f"Received: a file that ends before its gzip stream does"
        )


def read_images(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read an IDX image file as a ``(n, 28, 28)`` uint8 array.

    Raises:
        IdxFormatError: on any `read_idx` error, or when the file does not hold at least one
            28x28 uint8 image.
    """
    path = Path(path)
    images = read_idx(path, max_bytes=max_bytes)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise IdxFormatError(
            f"{path}: Expected uint8 images of shape (n, {IMAGE_SHAPE[0]}, {IMAGE_SHAPE[1]}). "
            f"Received: dtype={images.dtype}, shape={images.shape}"
        )
    if len(images) == 0:
        raise IdxFormatError(f"{path}: Expected at least one image. Received: 0 images")
    return images


def read_labels(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read an IDX label file as a ``(n,)`` uint8 array of classes 0..9.

    Raises:
        IdxFormatError: on any `read_idx` error, or when the file is not a non-empty 1-D uint8
            array whose values all lie in 0..9 (the first offending row is named).
    """
    path = Path(path)
    labels = read_idx(path, max_bytes=max_bytes)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IdxFormatError(
            f"{path}: Expected a 1-D uint8 label array. "
            f"Received: dtype={labels.dtype}, shape={labels.shape}"
        )
    if len(labels) == 0:
        raise IdxFormatError(f"{path}: Expected at least one label. Received: 0 labels")
    _check_label_range(labels, path)
    return labels


def read_labelled_images(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images and their labels from two IDX files, which must hold as many of each.

    Raises:
        IdxFormatError: either file is not valid IDX data, or their counts differ.
    """
    images = read_images(images_path)
    labels = read_labels(labels_path)
    if len(images) != len(labels):
        raise IdxFormatError(
            f"{images_path} and {labels_path}: Expected as many labels as images. "
            f"Received: {len(images)} images, {len(labels)} labels"
        )
    return images, labels


def idx_to_parquet(
    images_path: Path,
    labels_path: Path,
    target: Path,
    *,
    source_sha256: Mapping[str, str],
    code_version: str,
) -> int:
    """Write images and labels as one Parquet table, provenance in its key-value metadata.

    Columns: ``label`` (uint8) and ``pixels`` (``fixed_size_binary(784)``, row-major 28x28).
    The metadata key ``trainflow`` holds JSON: schema version, row count, per-class counts,
    the source files' sha256s and the code version. The file appears only once complete
    (temp-then-rename); on any error nothing is written.

    Args:
        images_path: gzip IDX image file.
        labels_path: gzip IDX label file with one label per image.
        target: Parquet file to create (or replace).
        source_sha256: sha256 of each source file, keyed by file name; recorded, not checked
            here, because the download step has already verified them.
        code_version: version of the code that wrote the table (see `lib.core.code_version`).

    Returns:
        The number of rows written.

    Raises:
        IdxFormatError: on any read error, or when image and label counts differ.
        ValueError: when a `source_sha256` value is not a 64-character hex digest.
    """
    _check_sha256s(source_sha256)
    images, labels = read_labelled_images(images_path, labels_path)
    pixels = pa.Array.from_buffers(
        pa.binary(PIXELS_PER_IMAGE),
        len(images),
        [None, pa.py_buffer(np.ascontiguousarray(images).reshape(-1))],
    )
    provenance = {
        "schema_version": TABLE_SCHEMA_VERSION,
        "kind": TABLE_KIND,
        "rows": len(labels),
        "class_counts": np.bincount(labels, minlength=NUM_CLASSES).tolist(),
        "image_shape": list(IMAGE_SHAPE),
        "source_sha256": dict(sorted(source_sha256.items())),
        "code_version": code_version,
    }
    table = pa.Table.from_arrays([pa.array(labels), pixels], schema=TABLE_SCHEMA)
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(provenance, sort_keys=True)})
    target = Path(target)
    with atomic_path(target) as temporary:
        # One row group keeps the pixel column one buffer on read (no concatenating copy).
        pq.write_table(
            table,
            temporary,
            compression=PARQUET_COMPRESSION,
            row_group_size=max(len(table), 1),
            use_dictionary=[LABEL_COLUMN],
        )
    return len(table)


def read_image_table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a table written by `idx_to_parquet` as ``(images (n, 28, 28), labels (n,))`` uint8.

    The images are a view over Arrow's pixel buffer: no per-row work, and no copy when the
    table holds one row group (as `idx_to_parquet` writes it).

    Raises:
        IdxFormatError: when the file is not such a table (schema, metadata version, labels).
    """
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise IdxFormatError(f"{path}: Expected a Parquet file. Received: {error}") from error
    metadata = parse_json_metadata(table.schema, path, METADATA_KEY, IdxFormatError)
    if metadata.get("schema_version") != TABLE_SCHEMA_VERSION:
        raise IdxFormatError(
            f"{path}: Expected image table schema_version={TABLE_SCHEMA_VERSION}. "
            f"Received: schema_version={metadata.get('schema_version')!r}"
        )
    if not table.schema.equals(TABLE_SCHEMA, check_metadata=False):
        raise IdxFormatError(
            f"{path}: Expected columns {TABLE_SCHEMA.to_string(show_schema_metadata=False)!r}. "
            f"Received: {table.schema.to_string(show_schema_metadata=False)!r}"
        )
    labels = table.column(LABEL_COLUMN).combine_chunks().to_numpy(zero_copy_only=False)
    pixels = table.column(PIXELS_COLUMN).combine_chunks()
    if pixels.null_count or table.column(LABEL_COLUMN).null_count:
        raise IdxFormatError(f"{path}: Expected no missing values. Received: nulls present")
    data = pixels.buffers()[1]
    images = np.frombuffer(
        data,
        dtype=np.uint8,
        count=len(pixels) * PIXELS_PER_IMAGE,
        offset=pixels.offset * PIXELS_PER_IMAGE,
    ).reshape(len(pixels), *IMAGE_SHAPE)
    _check_label_range(labels, path)
    return images, labels


def read_table_metadata(path: Path) -> dict[str, Any]:
    """The provenance `idx_to_parquet` stored in a table, without reading its rows.

    Raises:
        IdxFormatError: when the file is not Parquet or carries no trainflow metadata.
    """
    return read_json_metadata(path, METADATA_KEY, IdxFormatError)


def _read_header(
    handle: _GzipStream, path: Path, max_bytes: int
) -> tuple[np.dtype[Any], tuple[int, ...]]:
    """Parse and check the magic and dimensions; returns the dtype and shape to allocate."""
    magic = handle.read(MAGIC_BYTES)
    if len(magic) < MAGIC_BYTES:
        raise IdxFormatError(
            f"{path}: Expected a {MAGIC_BYTES}-byte IDX magic number. Received: {len(magic)} bytes"
        )
    if magic[:2] != MAGIC_ZERO_BYTES:
        raise IdxFormatError(
            f"{path}: Expected an IDX magic number starting with two zero bytes. "
            f"Received: magic=0x{magic.hex()}"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IdxFormatError(
            f"{path}: Expected an IDX dtype code in ({known}). Received: code=0x{code:02X}"
        )
    if not 1 <= ndim <= MAX_NDIM:
        raise IdxFormatError(f"{path}: Expected 1 to {MAX_NDIM} dimensions. Received: ndim={ndim}")
    raw_dims = handle.read(ndim * DIMENSION_BYTES)
    if len(raw_dims) < ndim * DIMENSION_BYTES:
        raise IdxFormatError(
            f"{path}: Expected {ndim} dimension sizes ({ndim * DIMENSION_BYTES} bytes) after "
            f"the magic. Received: {len(raw_dims)} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    dtype = IDX_DTYPES[code]
    claimed = math.prod(shape) * dtype.itemsize
    if claimed > max_bytes:
        raise IdxFormatError(
            f"{path}: Expected a payload of at most max_bytes={max_bytes:,} bytes. "
            f"Received: a header claiming shape={shape} of {dtype.name} = {claimed:,} bytes"
        )
    return dtype, shape


def _check_inflatable(path: Path, claimed: int, stat: os.stat_result) -> None:
    """Deflate cannot compress better than `MAX_DEFLATE_RATIO`, so a small file whose header
    claims a big payload is refused before the payload is allocated."""
    most = MAX_DEFLATE_RATIO * stat.st_size
    if claimed > most:
        raise IdxFormatError(
            f"{path}: Expected a payload that a {stat.st_size:,}-byte gzip file can hold (at "
            f"most {MAX_DEFLATE_RATIO:,}x its size, {most:,} bytes). Received: a header "
            f"claiming {claimed:,} bytes"
        )


def _read_payload(handle: _GzipStream, path: Path, payload: np.ndarray) -> None:
    """Fill the byte array `payload`; the stream must end exactly where the payload does."""
    view = payload.data
    expected = len(view)
    filled = 0
    while filled < expected:
        chunk = handle.read(min(READ_CHUNK_BYTES, expected - filled))
        if not chunk:
            break
        view[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    if filled < expected:
        raise IdxFormatError(
            f"{path}: Expected {expected:,} payload bytes, as the header says. "
            f"Received: {filled:,} bytes"
        )
    # One bounded read suffices to detect garbage; inflating all of it would let a gzip bomb
    # burn CPU.
    trailing = handle.read(READ_CHUNK_BYTES)
    if trailing:
        amount = "at least " if len(trailing) == READ_CHUNK_BYTES else ""
        raise IdxFormatError(
            f"{path}: Expected the payload to end after {expected:,} bytes, as the header "
            f"says. Received: {amount}{len(trailing):,} trailing bytes"
        )


def _check_label_range(labels: np.ndarray, path: Path) -> None:
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise IdxFormatError(
            f"{path}: Expected labels in 0..{NUM_CLASSES - 1}. Received: {bad.size} "
            f"out of range, first at row {bad[0]}: label={labels[bad[0]]}"
        )


def _check_sha256s(source_sha256: Mapping[str, str]) -> None:
    if not source_sha256:
        raise ValueError("Expected at least one source sha256. Received: source_sha256={}")
    for name, digest in source_sha256.items():
        if not (
            isinstance(digest, str)
            and len(digest) == SHA256_HEX_CHARS
            and all(c in "0123456789abcdef" for c in digest)
        ):
            raise ValueError(
                f"Expected a 64-character lowercase hex sha256 for {name!r}. Received: {digest!r}"
            )
