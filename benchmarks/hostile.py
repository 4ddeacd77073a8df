"""Hostile input files: is each refused with one clear error within 10 s and 1 GB?

    PYTHONPATH=. .venv/bin/python benchmarks/hostile.py [--only CASE ...] [--list]

Crafts every case in a temporary directory, then reads each in a fresh Python process with
the reader a user's file meets (`read_feature_table`, `load_image_28x28`, `read_images`), so
import time counts and no case's memory hides in another's. Prints the load average first
(the machine is shared), then a markdown table: the child's one-line outcome, its wall
seconds (imports included) and the seconds of the read alone, its peak RSS (VmHWM), and
whether it stayed within the issue's bounds. A few cases are files a user may
legitimately send at the limits; they are accepted, and must be just as cheap.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from lib.core.table_files import EXCEL_MAX_ROWS, MAX_DATA_ROWS, MAX_PARSED_ELEMENTS
from lib.energy.constants import FEATURES as ENERGY_FEATURES
from lib.siamese.idx import DEFAULT_MAX_BYTES
from tests.fixtures.hostile import (
    FILE_ROW_GROUPS,
    MAIN_NS,
    SHEET_XML,
    ThriftStruct,
    craft_xlsx,
    gzip_of_zeros,
    header_row,
    idx_gz_claiming,
    jpeg_with_orientation,
    png_claiming,
    rewrite_entry,
    rewrite_parquet_footer,
    row_xml,
    set_chunk_sizes,
    set_row_count,
    write_parquet,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_SECONDS = 10.0
MAX_PEAK_MB = 1024
CHILD_TIMEOUT_SECONDS = 120
POLL_SECONDS = 0.02
SHOWN_MESSAGE_CHARS = 110
KIB = 1024
# Cell by cell (openpyxl): a row and 8 cells of 2 tags each, within MAX_PARSED_ELEMENTS.
LARGEST_PARSED_ROWS = (MAX_PARSED_ELEMENTS - 100) // (2 * 8 + 1)
LARGEST_PLAIN_ROWS = EXCEL_MAX_ROWS - 1  # below the header: Excel's last row
ROW = (0.98, 514.5, 294.0, 110.25, 7.0, 2, 0.0, 0)  # a UCI ENB2012 feature row

CHILD = """
import json, sys, time
from pathlib import Path
kind, path = sys.argv[1], Path(sys.argv[2])
from lib.siamese.idx import IdxFormatError, read_images
from lib.siamese.images import ImageFormatError, load_image_28x28
from lib.energy.table import read_feature_table
from lib.core.table_files import WorkbookError
readers = {"table": read_feature_table, "image": load_image_28x28, "idx": read_images}
start = time.perf_counter()
try:
    result = readers[kind](path)
    outcome = f"accepted: shape {tuple(result.shape)}"
except (WorkbookError, ImageFormatError, IdxFormatError) as error:
    outcome = f"{type(error).__name__}: {error}"
except Exception as error:
    outcome = f"UNCAUGHT {type(error).__name__}: {error}"
seconds = time.perf_counter() - start
status = Path("/proc/self/status").read_text()
peak_kb = int(status.split("VmHWM:")[1].split()[0])
print(json.dumps({"outcome": outcome, "read_seconds": seconds, "peak_kb": peak_kb}))
"""


@dataclass(frozen=True)
class Case:
    """A hostile (or limit-sized) file, the reader it meets, and whether it should pass."""

    name: str
    build: Callable[[Path], Path]
    reader: str
    accepted: bool = False


# --- workbooks ---------------------------------------------------------------------------------


def _sheet(path: Path, rows: str) -> Path:
    return craft_xlsx(path, header_row(*ENERGY_FEATURES) + rows)


def _data(number: int) -> str:
    return row_xml(number, *ROW)


def _blank_rows(first: int, count: int) -> str:
    return "".join(f'<row r="{number}"/>' for number in range(first, first + count))


def _element_flood(path: Path) -> Path:
    """Merged ranges after the rows: openpyxl's iter_rows builds an object for each."""
    merged = "".join(f'<mergeCell ref="J{n}:K{n}"/>' for n in range(1, MAX_PARSED_ELEMENTS * 2))
    craft_xlsx(path, header_row(*ENERGY_FEATURES) + _data(2))
    rewrite_entry(
        path,
        SHEET_XML,
        lambda xml: xml.replace(
            b"</sheetData>", f"</sheetData><mergeCells>{merged}</mergeCells>".encode()
        ),
    )
    return path


def _style_flood(path: Path) -> Path:
    """A styles part of 30,000 cell formats, each a little different (so it compresses)."""
    formats = "".join(
        f'<xf numFmtId="{14 + n % 30}" fontId="0" fillId="0" borderId="{n % 7}"/>'
        for n in range(30_000)
    )
    styles = f'<styleSheet xmlns="{MAIN_NS}"><cellXfs>{formats}</cellXfs></styleSheet>'
    _sheet(path, _data(2))
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/styles.xml", styles)
    return path


def _long_shared_string(path: Path) -> Path:
    strings = f'<sst xmlns="{MAIN_NS}"><si><t>{" " * 1_000_000}x</t></si></sst>'
    cells = "".join('<c t="s"><v>0</v></c>' for _ in ENERGY_FEATURES)
    _sheet(path, "".join(f'<row r="{n}">{cells}</row>' for n in range(2, 9_000)))
    strings_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
    override = f'<Override PartName="/xl/sharedStrings.xml" ContentType="{strings_type}"/>'
    rewrite_entry(
        path,
        "[Content_Types].xml",
        lambda xml: xml.replace(b"</Types>", override.encode() + b"</Types>"),
    )
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", strings)
    return path


def _zip_bomb(path: Path) -> Path:
    _sheet(path, _data(2))
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("xl/media/padding.bin", "w") as entry,
    ):
        for _ in range(300):
            entry.write(bytes(2**20))
    return path


def _billion_laughs(path: Path) -> Path:
    entities = "".join(
        f'<!ENTITY l{level} "{f"&l{level - 1};" * 10 if level else "lol"}">' for level in range(10)
    )
    _sheet(path, _data(2))
    rewrite_entry(
        path,
        SHEET_XML,
        lambda xml: (
            f"<!DOCTYPE w [{entities}]>".encode() + xml.replace(b"<v>0.98</v>", b"<v>&l9;</v>")
        ),
    )
    return path


def _largest_workbook(path: Path) -> Path:
    """As many rows as `MAX_PARSED_ELEMENTS` allows cell by cell (no cell names its position)."""
    rows = range(2, LARGEST_PARSED_ROWS + 2)
    return _sheet(path, "".join(_data(number) for number in rows))


def _plain_row(number: int, values: tuple[object, ...] = ROW) -> str:
    cells = "".join(
        f'<c r="{chr(ord("A") + index)}{number}"><v>{value}</v></c>'
        for index, value in enumerate(values)
    )
    return f'<row r="{number}">{cells}</row>'


def _plain_header() -> str:
    cells = "".join(
        f'<c r="{chr(ord("A") + index)}1" t="inlineStr"><is><t>{name}</t></is></c>'
        for index, name in enumerate(ENERGY_FEATURES)
    )
    return f'<row r="1">{cells}</row>'


def _plain_sheet(path: Path, rows: int, last: str = "") -> Path:
    """`rows` plain rows below a header (as spreadsheets write them), then `last`, streamed."""

    def pieces() -> Iterator[str]:
        yield _plain_header()
        for start in range(2, rows + 2, 10_000):
            yield "".join(_plain_row(n) for n in range(start, min(start + 10_000, rows + 2)))
        yield last

    return craft_xlsx(path, pieces())


def _far_cells(path: Path) -> Path:
    """Two cells, A1 and XFD1048576: calamine would allocate the rectangle between them."""
    far = '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
    return craft_xlsx(path, _plain_header() + _plain_row(2) + far)


# --- CSV and Parquet ----------------------------------------------------------------------------


def _csv(path: Path, body: str) -> Path:
    path.write_text(",".join(ENERGY_FEATURES) + "\n" + ",".join(map(str, ROW)) + "\n" + body)
    return path


def _parquet(path: Path, rows: int = 3, **options: object) -> Path:
    return write_parquet(
        path, {name: [ROW[i]] * rows for i, name in enumerate(ENERGY_FEATURES)}, **options
    )


def _parquet_huge_footer(path: Path) -> Path:
    """A 62 MB footer: the one row group repeated 75,000 times."""

    def repeat(footer: ThriftStruct) -> None:
        kind, groups = footer.get(FILE_ROW_GROUPS)
        footer.set(FILE_ROW_GROUPS, (kind, groups * 75_000))

    return rewrite_parquet_footer(_parquet(path, rows=1), repeat)


def _parquet_page_bomb(path: Path) -> Path:
    """A zstd page of 200 MB of text in a file of a few kB, its footer declaring 100 bytes."""
    text = pa.array(["x" * 200_000_000, "y", "z"])
    write_parquet(
        path, dict.fromkeys(ENERGY_FEATURES, text), compression="zstd", use_dictionary=False
    )
    return rewrite_parquet_footer(path, set_chunk_sizes(uncompressed=100))


def _parquet_null_flood(path: Path) -> Path:
    """20 million nulls per column in a few bytes of levels, the footer claiming 3 rows."""
    nulls = pa.nulls(20_000_000)
    write_parquet(path, dict.fromkeys(ENERGY_FEATURES, nulls), row_group_size=20_000_000)
    return rewrite_parquet_footer(path, set_row_count(3))


def _parquet_shared_word(path: Path) -> Path:
    """One 32,000-space word that every cell of 250,000 rows points to, dictionary-encoded."""
    indices = pa.array(np.zeros(MAX_DATA_ROWS, dtype=np.int32))
    word = pa.DictionaryArray.from_arrays(indices, pa.array([" " * 32_000 + "x"]))
    return write_parquet(path, dict.fromkeys(ENERGY_FEATURES, word))


# --- images and IDX -----------------------------------------------------------------------------


def _huge_jpeg_header(path: Path) -> Path:
    """A small JPEG whose frame header (SOF0) is patched to claim 65,500 x 65,500 pixels."""
    Image.new("L", (16, 16), 128).save(path, format="JPEG")
    data = bytearray(path.read_bytes())
    frame = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, frame + 5, 65_500, 65_500)
    path.write_bytes(bytes(data))
    return path


def _truncated_jpeg(path: Path) -> Path:
    noise = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, format="JPEG")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _text_bomb_png(path: Path) -> Path:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * 64_000_000, zip=True)
    Image.new("L", (28, 28)).save(path, pnginfo=info)
    return path


def _random_bytes(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


def _largest_photo(path: Path) -> Path:
    """A 40 MP RGBA PNG (the pixel limit), EXIF-rotated: the costliest image accepted."""
    rows, columns = np.indices((5_000, 8_000))
    pixels = np.stack(
        [rows % 256, columns % 256, (rows + columns) % 256, columns % 200 + 55], axis=-1
    ).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, exif=exif.tobytes(), compress_level=1)
    return path


def _idx_header(path: Path, shape: tuple[int, ...]) -> Path:
    return idx_gz_claiming(path, shape)


def _largest_idx(path: Path) -> Path:
    """A gzip of zeros as large as `DEFAULT_MAX_BYTES` allows (about 250 kB compressed)."""
    images = DEFAULT_MAX_BYTES // (28 * 28)
    header = b"\x00\x00\x08\x03" + struct.pack(">3I", images, 28, 28)
    return gzip_of_zeros(path, header, images * 28 * 28)


def _gzip_endless_name(path: Path) -> Path:
    path.write_bytes(b"\x1f\x8b\x08\x08" + bytes(6) + b"n" * 60_000_000)
    return path


CASES = [
    Case(
        "xlsx row r=1,000,000,000", lambda p: _sheet(p / "t.xlsx", _data(2) + _data(10**9)), "table"
    ),
    Case(
        "xlsx row past Excel's last",
        lambda p: _sheet(p / "t.xlsx", _data(2) + _data(EXCEL_MAX_ROWS + 1)),
        "table",
    ),
    Case(
        "xlsx gap to row 1,000,000 then data",
        lambda p: _sheet(p / "t.xlsx", _data(2) + _data(1_000_000)),
        "table",
    ),
    Case(
        "xlsx 190,000 blank rows then data",
        lambda p: _sheet(p / "t.xlsx", _data(2) + _blank_rows(3, 190_000) + _data(190_003)),
        "table",
    ),
    Case(
        "xlsx 190,000 blank rows after data",
        lambda p: _sheet(p / "t.xlsx", _data(2) + _blank_rows(3, 190_000)),
        "table",
        accepted=True,
    ),
    Case("xlsx 400,000 merged ranges", lambda p: _element_flood(p / "t.xlsx"), "table"),
    Case("xlsx 30,000 cell formats", lambda p: _style_flood(p / "t.xlsx"), "table"),
    Case(
        "xlsx 1 MB shared string in 72,000 cells",
        lambda p: _long_shared_string(p / "t.xlsx"),
        "table",
    ),
    Case(
        "xlsx 500 sheets on one part",
        lambda p: craft_xlsx(p / "t.xlsx", header_row(*ENERGY_FEATURES) + _data(2), sheets=500),
        "table",
    ),
    Case("xlsx zip bomb (300 MiB entry)", lambda p: _zip_bomb(p / "t.xlsx"), "table"),
    Case("xlsx billion laughs", lambda p: _billion_laughs(p / "t.xlsx"), "table"),
    Case(
        f"xlsx largest accepted cell by cell ({LARGEST_PARSED_ROWS:,} rows)",
        lambda p: _largest_workbook(p / "t.xlsx"),
        "table",
        accepted=True,
    ),
    Case(
        f"xlsx largest accepted, plain ({LARGEST_PLAIN_ROWS:,} rows)",
        lambda p: _plain_sheet(p / "t.xlsx", LARGEST_PLAIN_ROWS),
        "table",
        accepted=True,
    ),
    Case(
        "xlsx plain 1,000,000 rows, text in the last",
        lambda p: _plain_sheet(p / "t.xlsx", 999_999, _plain_row(1_000_001, ("x",) * 8)),
        "table",
    ),
    Case(
        "xlsx two cells, A1 and XFD1048576",
        lambda p: _far_cells(p / "t.xlsx"),
        "table",
        accepted=True,
    ),
    Case(
        "xlsx plain, cells claiming rows past Excel's",
        lambda p: craft_xlsx(
            p / "t.xlsx",
            _plain_header() + _plain_row(2) + '<row r="3"><c r="A9999999"><v>1</v></c></row>',
        ),
        "table",
    ),
    Case("csv 60,000,000 blank lines", lambda p: _csv(p / "t.csv", "\n" * 60_000_000), "table"),
    Case(
        "csv 20,000 blank lines then data",
        lambda p: _csv(p / "t.csv", "\n" * 20_000 + ",".join(map(str, ROW)) + "\n"),
        "table",
    ),
    Case(
        f"csv {MAX_DATA_ROWS:,} rows (the row limit)",
        lambda p: _csv(p / "t.csv", (",".join(map(str, ROW)) + "\n") * (MAX_DATA_ROWS - 1)),
        "table",
        accepted=True,
    ),
    Case(
        "parquet num_rows = 10**12",
        lambda p: rewrite_parquet_footer(_parquet(p / "t.parquet"), set_row_count(10**12)),
        "table",
    ),
    Case(
        "parquet num_rows > data",
        lambda p: rewrite_parquet_footer(_parquet(p / "t.parquet"), set_row_count(50_000)),
        "table",
    ),
    Case(
        "parquet chunk sizes past the file",
        lambda p: rewrite_parquet_footer(
            _parquet(p / "t.parquet"), set_chunk_sizes(10**15, 10**15)
        ),
        "table",
    ),
    Case(
        "parquet footer of 62 MB (75,000 row groups)",
        lambda p: _parquet_huge_footer(p / "t.parquet"),
        "table",
    ),
    Case(
        "parquet 200 MB page, footer says 100 B",
        lambda p: _parquet_page_bomb(p / "t.parquet"),
        "table",
    ),
    Case(
        "parquet 20M nulls, footer says 3 rows",
        lambda p: _parquet_null_flood(p / "t.parquet"),
        "table",
    ),
    Case("parquet 32 kB word x 2M cells", lambda p: _parquet_shared_word(p / "t.parquet"), "table"),
    Case(
        "png header 20,000 x 20,000", lambda p: png_claiming(p / "i.png", 20_000, 20_000), "image"
    ),
    Case(
        "png header 10,000 x 10,000 (Pillow warns)",
        lambda p: png_claiming(p / "i.png", 10_000, 10_000),
        "image",
    ),
    Case("png header 20,000,000 x 1", lambda p: png_claiming(p / "i.png", 20_000_000, 1), "image"),
    Case("jpeg header 65,500 x 65,500", lambda p: _huge_jpeg_header(p / "i.jpg"), "image"),
    Case("png with a 64 MB zTXt chunk", lambda p: _text_bomb_png(p / "i.png"), "image"),
    Case("jpeg truncated", lambda p: _truncated_jpeg(p / "i.jpg"), "image"),
    Case("random bytes as .png", lambda p: _random_bytes(p / "i.png"), "image"),
    Case(
        "png 40 MP RGBA, EXIF-rotated",
        lambda p: _largest_photo(p / "i.png"),
        "image",
        accepted=True,
    ),
    Case(
        "jpeg EXIF Orientation=6",
        lambda p: jpeg_with_orientation(p / "i.jpg", Image.new("L", (64, 32), 200), 6),
        "image",
        accepted=True,
    ),
    Case(
        "idx header claims 10**9 images", lambda p: _idx_header(p / "i.gz", (10**9, 28, 28)), "idx"
    ),
    Case(
        "idx 235 MB claimed by a 33-byte file",
        lambda p: _idx_header(p / "i.gz", (300_000, 28, 28)),
        "idx",
    ),
    Case("idx gzip name of 60 MB", lambda p: _gzip_endless_name(p / "i.gz"), "idx"),
    Case(
        "idx gzip of zeros at max_bytes", lambda p: _largest_idx(p / "i.gz"), "idx", accepted=True
    ),
]


@dataclass(frozen=True)
class Result:
    outcome: str
    seconds: float
    read_seconds: float
    peak_mb: float


def run_child(kind: str, path: Path) -> Result:
    """Read `path` in a fresh interpreter: wall time, and the peak RSS it reports itself.

    The child reads its own high-water mark (VmHWM) rather than the parent taking
    `ru_maxrss` from `wait4`: the kernel folds the parent's resident set at fork and exec
    into a child's `ru_maxrss`, and this parent holds the crafted files' makings.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, kind, str(path)],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            timeout=CHILD_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        seconds = time.perf_counter() - start
        return Result(f"KILLED after {seconds:.0f} s", seconds, float("nan"), float("nan"))
    seconds = time.perf_counter() - start
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Result(
            f"CRASHED (exit {done.returncode}): {tail}", seconds, float("nan"), float("nan")
        )
    return Result(report["outcome"], seconds, report["read_seconds"], report["peak_kb"] / KIB)


def row(case: Case, result: Result) -> str:
    message = " ".join(result.outcome.split())
    shown = message if len(message) <= SHOWN_MESSAGE_CHARS else message[:SHOWN_MESSAGE_CHARS] + "…"
    refused = result.outcome.split(":")[0] in (
        "WorkbookError",
        "ImageFormatError",
        "IdxFormatError",
    )
    expected = result.outcome.startswith("accepted") if case.accepted else refused
    bounded = result.seconds <= MAX_SECONDS and result.peak_mb <= MAX_PEAK_MB
    verdict = "yes" if expected and bounded else "**NO**"
    shown = shown.replace("|", "\\|")
    return (
        f"| {case.name} | {shown} | {result.seconds:.2f} | {result.read_seconds:.2f} "
        f"| {result.peak_mb:.0f} | {verdict} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", metavar="CASE", help="substrings of case names")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or any(s in c.name for s in args.only)]
    if args.list:
        print("\n".join(case.name for case in cases))
        return

    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average (1, 5, 15 min) at start: {load} on {os.cpu_count()} CPUs\n")
    print(
        "| case | outcome (first 110 characters) | seconds | read s | peak MB "
        f"| within {MAX_SECONDS:.0f} s / {MAX_PEAK_MB} MB |"
    )
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for case in cases:
        with tempfile.TemporaryDirectory(prefix="hostile-") as scratch:
            directory = Path(scratch)
            path = case.build(directory)
            print(row(case, run_child(case.reader, path)), flush=True)


if __name__ == "__main__":
    main()
