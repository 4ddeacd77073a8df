"""Streaming downloads into the raw store: checksum-verified, retried, resumed, mirror-first.

A pinned file lands at ``<raw_dir>/<sha256>/<name>`` and nowhere else until its hash is right:
bytes are written to ``<raw_dir>/.partial/`` and renamed into place only once verified, so a
crash, a timeout or a wrong mirror never leaves a file a later step could trust by mistake.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit
from urllib.request import url2pathname

import httpx

from lib.core.hashing import sha256_file
from lib.core.remote import RemoteFile

if sys.platform != "win32":
    import fcntl

logger = logging.getLogger("trainflow.fetch")

PARTIAL_DIR = ".partial"
LOCK_DIR = ".locks"
CHUNK_BYTES = 1 << 16
DEFAULT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF = 0.5
DEFAULT_MAX_BYTES = 1 << 30
HTTP_PARTIAL_CONTENT = 206
HTTP_RANGE_NOT_SATISFIABLE = 416
HTTP_SERVER_ERROR = 500
# Transient by definition (request timeout, rate limited); every other 4xx moves on at once.
RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})
HTTP_SCHEMES = ("http", "https")
# Ask for the bytes as stored: a server that gzips on the fly would break both the checksum
# and byte offsets for resuming.
REQUEST_HEADERS = {"Accept-Encoding": "identity"}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")

Progress = Callable[[int, int | None], None]
Location = Path | str  # a local file, or an http(s) URL


class DownloadError(RuntimeError):
    """No source delivered the file; `failures` says what each source answered."""

    def __init__(self, message: str, failures: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.failures = tuple(failures)


class ChecksumMismatchError(DownloadError):
    """At least one source delivered bytes whose sha256 is not the pinned one."""

    def __init__(
        self,
        message: str,
        failures: Sequence[tuple[str, str]],
        expected: str,
        received: Sequence[str],
    ) -> None:
        super().__init__(message, failures)
        self.expected = expected
        self.received = tuple(received)


class _SourceError(Exception):
    """This source cannot deliver the file now; the next source is tried."""


class _Retry(Exception):
    """A transient failure of one request: the same source is asked again after a pause."""


class _Refused(_SourceError):
    """The body is larger than the file can be; its bytes are discarded."""


@dataclass(frozen=True)
class _Transfer:
    """How to move bytes from one source into a partial file."""

    client: httpx.Client
    attempts: int
    backoff: float
    limit: int
    size: int | None
    progress: Progress | None
    resume: bool


def partial_path(remote: RemoteFile, raw_dir: Path) -> Path:
    """Where the bytes of `remote` collect until verified; kept between runs to resume."""
    return raw_dir / PARTIAL_DIR / f"{_pinned_sha256(remote)}-{_safe_name(remote.name)}"


def fetch(
    remote: RemoteFile,
    raw_dir: Path,
    mirrors: Sequence[str] = (),
    *,
    timeout: float = DEFAULT_TIMEOUT,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = DEFAULT_BACKOFF,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Progress | None = None,
) -> Path:
    """Put the pinned file at ``<raw_dir>/<sha256>/<name>``, downloading only if needed.

    Mirrors are tried before the published URLs so a team (or CI) reads from its own copy;
    checksums hold for mirrors too. A source that times out, drops the connection or answers
    5xx is asked again after ``backoff * 2**k`` seconds, resuming with a ``Range`` request; a
    4xx, an oversized body or a checksum mismatch moves on to the next source at once.

    Args:
        remote: the pinned file; its ``sha256`` must be set (see `fetch_source` otherwise).
        raw_dir: the raw store.
        mirrors: directories, ``file://`` or ``http(s)://`` base URLs laid out like
            ``../shared/data``; the file is looked up at ``<mirror>/<remote.mirror_path>``.
        timeout: seconds to wait for the server between bytes (connecting waits at most
            `CONNECT_TIMEOUT`).
        attempts: requests per HTTP source before moving on.
        backoff: first pause between attempts, doubled after each one.
        max_bytes: refuse bodies larger than this, and larger than ``remote.size`` if known.
        progress: called with (bytes so far, total or None) as bytes arrive.

    Returns:
        The path of the verified file.

    Raises:
        ChecksumMismatchError: every source failed, at least one with wrong bytes.
        DownloadError: every source failed otherwise.
    """
    expected = _pinned_sha256(remote)
    _check_arguments(timeout=timeout, attempts=attempts, backoff=backoff, max_bytes=max_bytes)
    final = raw_dir / expected / _safe_name(remote.name)
    if _is_verified(final, expected):
        return final
    sources = _sources(remote, mirrors)
    with _exclusive(raw_dir / LOCK_DIR / f"{expected}.lock"):
        # Another process may have finished the same file while we waited for the lock.
        if _is_verified(final, expected):
            return final
        partial = partial_path(remote, raw_dir)
        partial.parent.mkdir(parents=True, exist_ok=True)
        if _is_complete(partial, remote):
            logger.info("%s: promoting a complete earlier download", remote.name)
            _promote(partial, final)
            return final
        with _client(timeout) as client:
            transfer = _Transfer(
                client=client,
                attempts=attempts,
                backoff=backoff,
                limit=max_bytes if remote.size is None else min(remote.size, max_bytes),
                size=remote.size,
                progress=progress,
                resume=True,
            )
            return _fetch_from_sources(remote, sources, transfer, partial, final)


def fetch_source(
    source: str,
    raw_dir: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = DEFAULT_BACKOFF,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Progress | None = None,
) -> tuple[Path, str]:
    """Copy or download a user's own file (no pinned checksum) into the raw store.

    The content decides the place, ``<raw_dir>/<sha256>/<basename>``, so the same workbook
    always lands on the same path and an edited one on a new path.

    Args:
        source: a local path, a ``file://`` URL or an ``http(s)://`` URL.
        raw_dir: the raw store.
        timeout, attempts, backoff, max_bytes, progress: as for `fetch`.

    Returns:
        The stored path and its sha256.

    Raises:
        FileNotFoundError: a local source does not exist.
        DownloadError: an HTTP source could not be downloaded.
    """
    _check_arguments(timeout=timeout, attempts=attempts, backoff=backoff, max_bytes=max_bytes)
    location = _locate(source)
    name = _safe_name(_basename(location), what=f"the file name in source={source!r}")
    if isinstance(location, Path) and not location.is_file():
        raise FileNotFoundError(
            f"Expected `source` to be an existing file. Received: source={source!r} "
            f"(no file at {location})"
        )
    partial_dir = raw_dir / PARTIAL_DIR
    partial_dir.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f"{name}.", suffix=".part", dir=partial_dir)
    os.close(fd)
    partial = Path(temporary)
    try:
        with _client(timeout) as client:
            # No resuming: without a pinned hash, spliced bytes of two versions go unnoticed.
            transfer = _Transfer(client, attempts, backoff, max_bytes, None, progress, False)
            _transfer_from(transfer, location, partial)
        digest = sha256_file(partial)
        final = raw_dir / digest / name
        _promote(partial, final)
    except _SourceError as error:
        raise DownloadError(
            f"Could not fetch source={source!r}: {error}", [(source, str(error))]
        ) from error
    finally:
        partial.unlink(missing_ok=True)
    logger.info("%s stored at %s (sha256 %s)", source, final, digest)
    return final, digest


def _fetch_from_sources(
    remote: RemoteFile,
    sources: Sequence[tuple[str, Location]],
    transfer: _Transfer,
    partial: Path,
    final: Path,
) -> Path:
    expected = _pinned_sha256(remote)
    failures: list[tuple[str, str]] = []
    received: list[str] = []
    for label, location in sources:
        logger.info("%s: fetching from %s", remote.name, label)
        try:
            digest = _fetch_digest(transfer, location, partial, expected)
        except _SourceError as error:
            logger.info("%s: %s failed: %s", remote.name, label, error)
            failures.append((label, str(error)))
            continue
        if digest == expected:
            _promote(partial, final)
            logger.info("%s: verified and stored at %s", remote.name, final)
            return final
        logger.info("%s: checksum mismatch from %s (sha256 %s)", remote.name, label, digest)
        failures.append((label, f"checksum mismatch. Received: sha256={digest}"))
        received.append(digest)
    raise _all_failed(remote, failures, received)


def _fetch_digest(transfer: _Transfer, location: Location, partial: Path, expected: str) -> str:
    """Transfer into `partial` and hash it; wrong bytes are discarded, never kept.

    A mismatch after resuming may come from stale earlier bytes (another version, another
    source) rather than from this source, so the source gets one clean download from zero.
    """
    resumed = _transfer_from(transfer, location, partial)
    digest = sha256_file(partial)
    if digest != expected and resumed:
        logger.info("checksum mismatch after resuming; downloading %s again from byte 0", location)
        partial.unlink()
        _transfer_from(transfer, location, partial)
        digest = sha256_file(partial)
    if digest != expected:
        partial.unlink(missing_ok=True)
    return digest


def _all_failed(
    remote: RemoteFile, failures: Sequence[tuple[str, str]], received: Sequence[str]
) -> DownloadError:
    if not failures:
        return DownloadError(
            f"Expected at least one source for {remote.name!r} (a mirror or a URL). "
            "Received: mirrors=() and urls=()"
        )
    lines = "".join(f"\n  {label}: {said}" for label, said in failures)
    message = (
        f"Could not fetch {remote.name!r} from any of its {len(failures)} sources. "
        f"Expected sha256={remote.sha256}.{lines}"
    )
    if received:
        return ChecksumMismatchError(message, failures, _pinned_sha256(remote), received)
    return DownloadError(message, failures)


def _transfer_from(transfer: _Transfer, location: Location, partial: Path) -> bool:
    """Move the bytes of one source into `partial`; True when appended to earlier bytes."""
    if isinstance(location, Path):
        _copy_local(transfer, location, partial)
        return False
    return _download(transfer, location, partial)


def _copy_local(transfer: _Transfer, source: Path, partial: Path) -> None:
    if not source.is_file():
        raise _SourceError("not found")
    try:
        size = source.stat().st_size
        _check_limit(transfer, size)
        with open(source, "rb") as handle:
            chunks = iter(lambda: handle.read(CHUNK_BYTES), b"")
            _write_chunks(transfer, chunks, partial, offset=0, total=size)
    except OSError as error:
        raise _SourceError(f"could not be read ({error.strerror or error})") from error


def _download(transfer: _Transfer, url: str, partial: Path) -> bool:
    """Ask one URL up to `attempts` times, pausing with exponential backoff in between."""
    last = ""
    for attempt in range(1, transfer.attempts + 1):
        if attempt > 1:
            delay = transfer.backoff * 2 ** (attempt - 2)
            logger.info(
                "retrying %s in %.2f s after: %s (attempt %d of %d)",
                url,
                delay,
                last,
                attempt,
                transfer.attempts,
            )
            time.sleep(delay)
        try:
            return _stream_once(transfer, url, partial)
        except _Retry as error:
            last = str(error)
        except httpx.TimeoutException:
            last = "timed out"
        except (httpx.NetworkError, httpx.RemoteProtocolError) as error:
            last = f"connection failed ({error})"
        except httpx.HTTPError as error:
            raise _SourceError(f"{type(error).__name__}: {error}") from error
    raise _SourceError(f"{last} after {transfer.attempts} attempts")


def _stream_once(transfer: _Transfer, url: str, partial: Path) -> bool:
    offset = _resume_offset(transfer, partial)
    headers: dict[str, str] = {}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        logger.info("resuming %s from byte %d", url, offset)
    with transfer.client.stream("GET", url, headers=headers) as response:
        offset = _accepted_offset(response, offset, partial)
        total = _announced_total(response, offset)
        _check_limit(transfer, total)
        # No chunk size: a chunker would hold back bytes received before a connection broke.
        chunks = response.iter_raw()
        _write_chunks(transfer, chunks, partial, offset=offset, total=total or transfer.size)
    return offset > 0


def _resume_offset(transfer: _Transfer, partial: Path) -> int:
    if not transfer.resume or not partial.is_file():
        return 0
    offset = partial.stat().st_size
    if offset >= transfer.limit:
        # Nothing left to ask for: the earlier bytes cannot be a prefix of this file.
        partial.unlink()
        return 0
    return offset


def _accepted_offset(response: httpx.Response, offset: int, partial: Path) -> int:
    """Where the body starts in the file, or why this response cannot be used."""
    status = response.status_code
    if status == HTTP_PARTIAL_CONTENT and offset and _range_start(response) == offset:
        return offset
    if status == httpx.codes.OK:
        if offset:
            logger.info("%s ignored the Range request; restarting from byte 0", response.url)
        return 0
    if status in (HTTP_PARTIAL_CONTENT, HTTP_RANGE_NOT_SATISFIABLE):
        # The server cannot continue our partial bytes: start over from zero.
        partial.unlink(missing_ok=True)
        raise _Retry(f"HTTP {status} to a request for bytes={offset}-")
    if status >= HTTP_SERVER_ERROR or status in RETRYABLE_CLIENT_STATUSES:
        raise _Retry(f"HTTP {status}")
    raise _SourceError(f"HTTP {status}")


def _range_start(response: httpx.Response) -> int | None:
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    return int(match.group(1)) if match else None


def _announced_total(response: httpx.Response, offset: int) -> int | None:
    """The full file size the response claims, if it claims one."""
    if response.status_code == HTTP_PARTIAL_CONTENT:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if match and match.group(2).isdigit():
            return int(match.group(2))
    length = response.headers.get("Content-Length", "")
    return offset + int(length) if length.isdigit() else None


def _check_limit(transfer: _Transfer, total: int | None) -> None:
    if total is not None and total > transfer.limit:
        raise _Refused(f"refused: body of {total} bytes exceeds the limit of {transfer.limit}")


def _write_chunks(
    transfer: _Transfer, chunks: Iterable[bytes], partial: Path, *, offset: int, total: int | None
) -> None:
    """Append (or write from zero) while enforcing the size limit on the bytes actually sent."""
    written = offset
    try:
        with open(partial, "ab" if offset else "wb") as handle:
            for chunk in chunks:
                written += len(chunk)
                if written > transfer.limit:
                    raise _Refused(
                        f"refused: body exceeds the limit of {transfer.limit} bytes "
                        f"(more than announced: {total})"
                    )
                handle.write(chunk)
                if transfer.progress is not None:
                    transfer.progress(written, total)
    except _Refused:
        partial.unlink(missing_ok=True)
        raise


def _promote(partial: Path, final: Path) -> None:
    """Rename verified bytes into place; same file system, so readers see all or nothing."""
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, final)


def _is_verified(path: Path, expected: str) -> bool:
    if not path.is_file():
        return False
    if sha256_file(path) == expected:
        return True
    logger.warning("%s does not hash to sha256 %s; fetching it again", path, expected)
    return False


def _is_complete(partial: Path, remote: RemoteFile) -> bool:
    """A download that finished before a crash needs no network, only its hash checked."""
    if not partial.is_file() or (remote.size is not None and partial.stat().st_size != remote.size):
        return False
    return sha256_file(partial) == remote.sha256


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Serialise fetches of one file across threads and processes sharing the raw store.

    Two writers appending to one partial file would interleave bytes; the lock file stays
    behind (empty) because deleting it would race with the next waiter.
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        if sys.platform != "win32":
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def _client(timeout: float) -> httpx.Client:
    timeouts = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))
    return httpx.Client(timeout=timeouts, follow_redirects=True, headers=REQUEST_HEADERS)


def _sources(remote: RemoteFile, mirrors: Sequence[str]) -> list[tuple[str, Location]]:
    located = [_join(_locate(mirror), remote.mirror_path) for mirror in mirrors]
    located += [_locate(url) for url in remote.urls]
    return [(str(location), location) for location in located]


def local_source(source: str) -> Path | None:
    """The file a local `source` (a path or a ``file://`` URL) names; None for http(s).

    Raises:
        ValueError: `source` is neither a local path nor an http(s) URL.
    """
    location = _locate(source)
    return location if isinstance(location, Path) else None


def _locate(text: str) -> Location:
    """A local path or an http(s) URL; anything else is a configuration error."""
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in HTTP_SCHEMES:
        return text
    if scheme == "file":
        return Path(url2pathname(parts.path))
    if len(scheme) <= 1:  # a plain path (or a Windows drive letter)
        return Path(text).expanduser()
    raise ValueError(
        "Expected a local path, a file:// URL or an http(s):// URL. "
        f"Received: {text!r} (scheme {scheme!r})"
    )


def _join(base: Location, relative: str) -> Location:
    if isinstance(base, Path):
        return base / relative
    return f"{base.rstrip('/')}/{quote(relative.lstrip('/'))}"


def _basename(location: Location) -> str:
    if isinstance(location, Path):
        return location.name
    return PurePosixPath(unquote(urlsplit(location).path)).name


def _safe_name(name: str, what: str = "RemoteFile.name") -> str:
    """A name that stays inside its directory of the raw store."""
    if name in ("", ".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"Expected {what} to be a plain file name. Received: {name!r}")
    return name


def _pinned_sha256(remote: RemoteFile) -> str:
    if not remote.sha256:
        raise ValueError(
            f"Expected a pinned sha256 for {remote.name!r}; use fetch_source for unpinned "
            f"files. Received: sha256={remote.sha256!r}"
        )
    return remote.sha256


def _check_arguments(*, timeout: float, attempts: int, backoff: float, max_bytes: int) -> None:
    if timeout <= 0:
        raise ValueError(f"Expected timeout > 0 seconds. Received: timeout={timeout}")
    if attempts < 1:
        raise ValueError(f"Expected attempts >= 1. Received: attempts={attempts}")
    if backoff < 0:
        raise ValueError(f"Expected backoff >= 0 seconds. Received: backoff={backoff}")
    if max_bytes < 1:
        raise ValueError(f"Expected max_bytes >= 1. Received: max_bytes={max_bytes}")
