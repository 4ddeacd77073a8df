"""A zip entry's inflated bytes, a chunk at a time, the next chunk inflated while one is used.

A million-row sheet is 320 MB of XML that the workbook checks read twice (`lib.core.xlsx_scan`,
`lib.core.xlsx_numbers`); zlib takes about 0.7 s of each pass. zlib and the CRC check release
the GIL, and so does most of the NumPy work on each chunk, so inflating one chunk ahead in a
worker thread lets the two overlap on a machine with two cores.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO


@contextlib.contextmanager
def inflated_chunks(
    archive: zipfile.ZipFile, entry: zipfile.ZipInfo | str, size: int
) -> Iterator[Iterator[bytes]]:
    """The entry's inflated bytes in chunks of up to `size` bytes.

    The iterator is only valid inside the ``with`` block; leaving the block early waits for
    the one chunk being inflated and closes the entry. Errors of `zipfile` and `zlib` reach
    the caller as the chunk they concern is taken.
    """
    with archive.open(entry) as stream, ThreadPoolExecutor(max_workers=1) as worker:
        chunks = _read_ahead(stream, worker, size)
        with contextlib.closing(chunks):
            yield chunks


def _read_ahead(
    stream: IO[bytes], worker: ThreadPoolExecutor, size: int
) -> Generator[bytes, None, None]:
    pending = worker.submit(stream.read, size)
    while chunk := pending.result():
        pending = worker.submit(stream.read, size)
        yield chunk
