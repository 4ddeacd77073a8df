"""IDX reading and the Parquet image table: tiny hand-built files for every way one can be bad."""

from __future__ import annotations

import gzip
import re
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lib.core.hashing import sha256_file
from lib.siamese import idx
from lib.siamese.constants import TEST_IMAGES as FASHION_TEST_IMAGES
from lib.siamese.constants import TEST_LABELS as FASHION_TEST_LABELS
from lib.siamese.idx import (
    DEFAULT_MAX_BYTES,
    IdxFormatError,
    idx_to_parquet,
    read_idx,
    read_image_table,
    read_images,
    read_labels,
    read_table_metadata,
)
from tests.fixtures.hostile import idx_gz_claiming

UINT8 = 0x08
INT8 = 0x09
N_IMAGES = 12
SHA = {"images.gz": "a" * 64, "labels.gz": "b" * 64}


def idx_bytes(
    array: np.ndarray,
    code: int,
    *,
    magic_prefix: bytes = b"\x00\x00",
    dims: tuple[int, ...] | None = None,
    ndim: int | None = None,
) -> bytes:
    """An uncompressed IDX file; `dims`/`ndim` override the header to build lying files."""
    dims = array.shape if dims is None else dims
    ndim = len(dims) if ndim is None else ndim
    header = magic_prefix + bytes([code, ndim]) + struct.pack(f">{len(dims)}I", *dims)
    big_endian = array.astype(array.dtype.newbyteorder(">"))
    return header + big_endian.tobytes()


def write_gz(path: Path, payload: bytes) -> Path:
    path.write_bytes(gzip.compress(payload, mtime=0))
    return path


def tiny_images(n: int = N_IMAGES) -> np.ndarray:
    return np.arange(n * 28 * 28, dtype=np.uint32).reshape(n, 28, 28).astype(np.uint8)


def tiny_labels(n: int = N_IMAGES) -> np.ndarray:
    return (np.arange(n) % 10).astype(np.uint8)


@pytest.fixture
def good_files(tmp_path: Path) -> tuple[Path, Path]:
    images = write_gz(tmp_path / "images.gz", idx_bytes(tiny_images(), UINT8))
    labels = write_gz(tmp_path / "labels.gz", idx_bytes(tiny_labels(), UINT8))
    return images, labels


def assert_nothing_written(directory: Path) -> None:
    leftovers = sorted(p.name for p in directory.iterdir()) if directory.exists() else []
    assert leftovers == [], leftovers


# --- happy paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "values"),
    [
        (0x08, np.array([0, 7, 255], dtype=np.uint8)),
        (0x09, np.array([-128, 0, 127], dtype=np.int8)),
        (0x0B, np.array([-300, 0, 258], dtype=np.int16)),
        (0x0C, np.array([-70_000, 1, 2**31 - 1], dtype=np.int32)),
        (0x0D, np.array([-1.5, 0.0, 3.25], dtype=np.float32)),
        (0x0E, np.array([-1e300, 0.5, 2.0], dtype=np.float64)),
    ],
)
def test_read_idx_decodes_every_dtype_big_endian(
    tmp_path: Path, code: int, values: np.ndarray
) -> None:
    path = write_gz(tmp_path / "x.gz", idx_bytes(values.reshape(1, 3), code))
    array = read_idx(path)
    assert array.shape == (1, 3)
    assert array.dtype == values.dtype and array.dtype.isnative
    np.testing.assert_array_equal(array.ravel(), values)


def test_read_images_and_labels(good_files: tuple[Path, Path]) -> None:
    images, labels = read_images(good_files[0]), read_labels(good_files[1])
    assert images.shape == (N_IMAGES, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, tiny_images())
    np.testing.assert_array_equal(labels, tiny_labels())


def test_idx_to_parquet_round_trips_with_provenance(
    tmp_path: Path, good_files: tuple[Path, Path]
) -> None:
    target = tmp_path / "out" / "table.parquet"
    rows = idx_to_parquet(*good_files, target, source_sha256=SHA, code_version="abc123")
    assert rows == N_IMAGES
    images, labels = read_image_table(target)
    np.testing.assert_array_equal(images, tiny_images())
    np.testing.assert_array_equal(labels, tiny_labels())
    assert images.dtype == np.uint8 and labels.dtype == np.uint8
    schema = pq.read_schema(target)
    assert schema.field("pixels").type == pa.binary(784)
    assert schema.field("label").type == pa.uint8()
    metadata = read_table_metadata(target)
    assert metadata["source_sha256"] == SHA
    assert metadata["code_version"] == "abc123"
    assert metadata["rows"] == N_IMAGES
    assert metadata["schema_version"] == idx.TABLE_SCHEMA_VERSION
    assert metadata["class_counts"] == [2, 2] + [1] * 8
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.parquet"]


def test_idx_to_parquet_is_byte_identical_on_rerun(
    tmp_path: Path, good_files: tuple[Path, Path]
) -> None:
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    idx_to_parquet(*good_files, first, source_sha256=SHA, code_version="v")
    idx_to_parquet(*good_files, second, source_sha256=SHA, code_version="v")
    assert sha256_file(first) == sha256_file(second)


# --- bad files ---------------------------------------------------------------------------------

GOOD_IMAGES = idx_bytes(tiny_images(), UINT8)


def _truncated_gzip(path: Path) -> None:
    compressed = gzip.compress(GOOD_IMAGES, mtime=0)
    path.write_bytes(compressed[: len(compressed) // 2])


def _bad_crc(path: Path) -> None:
    compressed = bytearray(gzip.compress(GOOD_IMAGES, mtime=0))
    compressed[-5] ^= 0xFF  # inside the CRC32 trailer
    path.write_bytes(bytes(compressed))


BAD_IMAGE_FILES = {
    "wrong magic": (
        lambda p: write_gz(p, idx_bytes(tiny_images(), UINT8, magic_prefix=b"\x08\x03")),
        "magic number starting with two zero bytes. Received: magic=0x0803",
    ),
    "unknown dtype code": (
        lambda p: write_gz(p, idx_bytes(tiny_images(), 0x0A)),
        r"dtype code in \(0x08, .*\). Received: code=0x0A",
    ),
    "zero dimensions": (
        lambda p: write_gz(p, b"\x00\x00\x08\x00"),
        "Expected 1 to 8 dimensions. Received: ndim=0",
    ),
    "short magic": (
        lambda p: write_gz(p, b"\x00\x00"),
        "4-byte IDX magic number. Received: 2 bytes",
    ),
    "missing dimension sizes": (
        lambda p: write_gz(p, b"\x00\x00\x08\x03" + struct.pack(">2I", N_IMAGES, 28)),
        r"Expected 3 dimension sizes \(12 bytes\).*Received: 8 bytes",
    ),
    "not gzip": (
        lambda p: p.write_bytes(GOOD_IMAGES),
        "Expected a complete gzip-compressed IDX file. Received: Not a gzipped file",
    ),
    "truncated gzip stream": (_truncated_gzip, "gzip stream; it is truncated or corrupt"),
    "corrupt gzip trailer": (
        _bad_crc,
        r"gzip-compressed IDX file. Received: corrupt gzip data \(.*incorrect data check\)",
    ),
    "payload shorter than header": (
        lambda p: write_gz(p, GOOD_IMAGES[:-100]),
        "Expected 9,408 payload bytes, as the header says. Received: 9,308 bytes",
    ),
    "trailing garbage": (
        lambda p: write_gz(p, GOOD_IMAGES + b"junk"),
        "end after 9,408 bytes, as the header says. Received: 4 trailing bytes",
    ),
    "absurd header": (
        lambda p: write_gz(p, idx_bytes(tiny_images(), UINT8, dims=(4_000_000_000, 28, 28))),
        rf"at most max_bytes={DEFAULT_MAX_BYTES:,} bytes. Received: a header claiming "
        r"shape=\(4000000000, 28, 28\)",
    ),
    "not 28x28": (
        lambda p: write_gz(p, idx_bytes(tiny_images()[:, :27, :], UINT8)),
        r"shape \(n, 28, 28\). Received: dtype=uint8, shape=\(12, 27, 28\)",
    ),
    "not uint8": (
        lambda p: write_gz(p, idx_bytes(tiny_images().astype(np.int8), INT8)),
        "Received: dtype=int8",
    ),
    "no images": (
        lambda p: write_gz(p, idx_bytes(np.zeros((0, 28, 28), np.uint8), UINT8)),
        "Expected at least one image. Received: 0 images",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGE_FILES))
def test_bad_image_file_is_refused_and_nothing_written(tmp_path: Path, case: str) -> None:
    make, message = BAD_IMAGE_FILES[case]
    images = tmp_path / "images.gz"
    make(images)
    labels = write_gz(tmp_path / "labels.gz", idx_bytes(tiny_labels(), UINT8))
    out = tmp_path / "out"
    with pytest.raises(IdxFormatError, match=message) as caught:
        idx_to_parquet(images, labels, out / "t.parquet", source_sha256=SHA, code_version="v")
    assert str(images) in str(caught.value)
    assert_nothing_written(out)


def _gzip_with_long_name(path: Path) -> None:
    """A gzip header whose file name runs on for 2 MB without its closing NUL."""
    flags_name = 0x08
    path.write_bytes(b"\x1f\x8b\x08" + bytes([flags_name]) + bytes(6) + b"n" * 2**21)


def _two_gzip_members(path: Path) -> None:
    path.write_bytes(gzip.compress(GOOD_IMAGES, mtime=0) + gzip.compress(b"more", mtime=0))


def test_refuses_a_header_claiming_more_than_the_file_can_inflate_to_without_allocating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = idx_gz_claiming(tmp_path / "images.gz", (300_000, 28, 28))  # 235 MB < max_bytes

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the payload was allocated before the header was checked")

    monkeypatch.setattr(idx.np, "empty", refuse)
    with pytest.raises(
        IdxFormatError,
        match=rf"images\.gz: Expected a payload that a {path.stat().st_size}-byte gzip file can "
        r"hold \(at most 1,032x its size, [\d,]+ bytes\). Received: a header claiming "
        r"235,200,000 bytes",
    ):
        read_idx(path)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda p: idx_gz_claiming(p, (10**9, 28, 28)),
            rf"at most max_bytes={DEFAULT_MAX_BYTES:,} bytes. Received: a header claiming "
            r"shape=\(1000000000, 28, 28\) of uint8 = 784,000,000,000 bytes",
        ),
        (_gzip_with_long_name, r"Expected a complete gzip stream; it is truncated or corrupt"),
        (_two_gzip_members, r"Expected the file to end with its gzip stream. Received: \d+ more"),
    ],
    ids=["1e9-images", "endless-gzip-name", "second-gzip-member"],
)
def test_refuses_hostile_gzip_idx_files(
    tmp_path: Path, build: Callable[[Path], object], message: str
) -> None:
    path = tmp_path / "images.gz"
    build(path)
    with pytest.raises(IdxFormatError, match=rf"^{re.escape(str(path))}: .*{message}"):
        read_idx(path)


BAD_LABEL_FILES = {
    "label out of range": (
        lambda: idx_bytes(np.array([0, 1, 10, 3, 12] + [0] * 7, np.uint8), UINT8),
        r"labels in 0..9. Received: 2 out of range, first at row 2: label=10",
    ),
    "labels not 1-D": (
        lambda: idx_bytes(tiny_labels().reshape(N_IMAGES, 1), UINT8),
        r"1-D uint8 label array. Received: dtype=uint8, shape=\(12, 1\)",
    ),
    "count mismatch": (
        lambda: idx_bytes(tiny_labels(N_IMAGES - 1), UINT8),
        "as many labels as images. Received: 12 images, 11 labels",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_LABEL_FILES))
def test_bad_label_file_is_refused_and_nothing_written(tmp_path: Path, case: str) -> None:
    make, message = BAD_LABEL_FILES[case]
    images = write_gz(tmp_path / "images.gz", GOOD_IMAGES)
    labels = write_gz(tmp_path / "labels.gz", make())
    out = tmp_path / "out"
    with pytest.raises(IdxFormatError, match=message) as caught:
        idx_to_parquet(images, labels, out / "t.parquet", source_sha256=SHA, code_version="v")
    assert str(labels) in str(caught.value)
    assert_nothing_written(out)


def test_max_bytes_limit_is_a_parameter(good_files: tuple[Path, Path]) -> None:
    with pytest.raises(IdxFormatError, match="at most max_bytes=100 bytes"):
        read_idx(good_files[0], max_bytes=100)
    assert read_idx(good_files[0], max_bytes=N_IMAGES * 784).shape == (N_IMAGES, 28, 28)


def test_bad_sha256_is_refused(tmp_path: Path, good_files: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError, match="hex sha256 for 'images.gz'. Received: 'XYZ'"):
        idx_to_parquet(
            *good_files,
            tmp_path / "out" / "t.parquet",
            source_sha256={"images.gz": "XYZ"},
            code_version="v",
        )
    assert_nothing_written(tmp_path / "out")


def test_failed_write_leaves_previous_table_untouched(
    tmp_path: Path, good_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out" / "t.parquet"
    idx_to_parquet(*good_files, target, source_sha256=SHA, code_version="old")

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(idx.pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        idx_to_parquet(*good_files, target, source_sha256=SHA, code_version="new")
    assert sorted(p.name for p in target.parent.iterdir()) == ["t.parquet"]
    assert read_table_metadata(target)["code_version"] == "old"


def test_read_image_table_refuses_other_files(tmp_path: Path) -> None:
    not_parquet = tmp_path / "x.parquet"
    not_parquet.write_bytes(b"not parquet at all")
    with pytest.raises(IdxFormatError, match="x.parquet: Expected a Parquet file"):
        read_image_table(not_parquet)
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"label": pa.array([1], pa.uint8())}), plain)
    with pytest.raises(IdxFormatError, match="Expected 'trainflow' key-value metadata"):
        read_image_table(plain)
    wrong_columns = tmp_path / "wrong.parquet"
    table = pa.table({"label": pa.array([1], pa.uint8())})
    pq.write_table(
        table.replace_schema_metadata({"trainflow": '{"schema_version": 1}'}), wrong_columns
    )
    with pytest.raises(IdxFormatError, match="wrong.parquet: Expected columns"):
        read_image_table(wrong_columns)


# --- real data ---------------------------------------------------------------------------------


@pytest.mark.data
def test_real_fashion_mnist_test_set(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "fashion-mnist"
    images_path = folder / FASHION_TEST_IMAGES.name
    labels_path = folder / FASHION_TEST_LABELS.name
    images, labels = read_images(images_path), read_labels(labels_path)
    assert images.shape == (10_000, 28, 28)
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [1_000] * 10)

    sha = {f.name: sha256_file(folder / f.name) for f in (FASHION_TEST_IMAGES, FASHION_TEST_LABELS)}
    assert sha == {f.name: f.sha256 for f in (FASHION_TEST_IMAGES, FASHION_TEST_LABELS)}
    target = tmp_path / "t10k.parquet"
    rows = idx_to_parquet(images_path, labels_path, target, source_sha256=sha, code_version="v")
    assert rows == 10_000
    table_images, table_labels = read_image_table(target)
    np.testing.assert_array_equal(table_images, images)
    np.testing.assert_array_equal(table_labels, labels)
    assert read_table_metadata(target)["class_counts"] == [1_000] * 10
