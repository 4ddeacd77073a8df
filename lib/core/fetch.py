"""Streaming downloads into the raw store: checksum-verified, retried, resumed, mirror-first.

A pinned file lands at ``<raw_dir>/<sha256>/<name>`` and nowhere else until its hash is right:
bytes are written to ``<raw_dir>/.partial/`` and renamed into place only once verified, so a
crash, a timeout or a wrong mirror never leaves a file a later step could trust by mistake.

Every cost is bounded: one deadline per file covers the wait for its lock and every attempt on
every source, so a server dripping a byte a second cannot hold the lock for ever; bodies are
capped while they stream; a server's ``Retry-After`` is honoured up to a cap; redirects never
leave https for http nor leave an http host; an unknown host or a refused connection ends a
source at once (or after one more try) instead of costing the whole retry budget. This loop
is the only retry layer: the Prefect tasks around it do not retry.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit
from urllib.request import url2pathname

import filelock
import httpx

from lib.core.atomic import atomic_path
from lib.core.errors import ExpectedError, InputError, SourceNotFoundError
from lib.core.faults import fault_point
from lib.core.hashing import sha256_file
from lib.core.remote import RemoteFile
from lib.core.settings import MIRROR_VARIABLE

logger = logging.getLogger("trainflow.fetch")

PARTIAL_DIR = ".partial"
LOCK_DIR = ".locks"
CHUNK_BYTES = 1 << 16
DEFAULT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF = 0.5
DEFAULT_MAX_BYTES = 1 << 30
# Seconds one file may take in all: the wait for its lock, every attempt, every source. Ten
# minutes carry the largest pinned file (26 MB) at 45 kB/s; a pinned download cut short is
# resumed by the next run, so the bound costs a slow link little.
DOWNLOAD_DEADLINE = 600.0
# The longest pause a server's Retry-After can ask of us; a longer ask is cut to this.
MAX_RETRY_AFTER = 60.0
MAX_REDIRECTS = 5
# A refused connection is asked once more (a server restarting), then the source is given up.
REFUSED_ATTEMPTS = 2
HTTP_PARTIAL_CONTENT = 206
HTTP_RANGE_NOT_SATISFIABLE = 416
HTTP_SERVER_ERROR = 500
# Transient by definition (request timeout, rate limited); every other 4xx moves on at once.
RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})
# The statuses whose Retry-After header says when to come back (RFC 9110, section 10.2.3).
RETRY_AFTER_STATUSES = frozenset({429, 503})
HTTP_SCHEMES = ("http", "https")
# Ask for the bytes as stored: a server that gzips on the fly would break both the checksum
# and byte offsets for resuming.
REQUEST_HEADERS = {"Accept-Encoding": "identity"}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")
ORIGIN_SUFFIX = ".origin"
"""Beside a verified pinned file: the mirror or URL its bytes came from (`fetched_from`)."""
MIRROR_HINT = f"set {MIRROR_VARIABLE}=/path/to/mirror or a base URL to use a copy"

Progress = Callable[[int, int | None], None]
Location = Path | str  # a local file, or an http(s) URL


class DownloadError(ExpectedError, RuntimeError):
    """No source delivered the file; `failures` says what each source answered.

    Expected: the message names every source as the user configured it (mirror, URL) and
    what it answered, which is all a user can act on.
    """

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


class _Unreachable(_SourceError):
    """No connection to the host at all: the machine may be offline, so a mirror may help."""


class _Expired(_SourceError):
    """The file's deadline has passed: no further attempt, and no further source."""


class _Refused(_SourceError):
    """The body is larger than the file can be; its bytes are discarded."""


class _Retry(Exception):
    """A transient failure of one request: the same source is asked again after a pause.

    Attributes:
        after: seconds the server asked us to wait (``Retry-After``), if it said.
        refused: the connection was refused, so only `REFUSED_ATTEMPTS` are worth making.
    """

    def __init__(self, message: str, *, after: float | None = None, refused: bool = False) -> None:
        super().__init__(message)
        self.after = after
        self.refused = refused


@dataclass(frozen=True)
class _Transfer:
    """How to move bytes from one source into a partial file, and until when."""

    client: httpx.Client
    timeout: float
    attempts: int
    backoff: float
    limit: int
    size: int | None
    progress: Progress | None
    resume: bool
    deadline: float  # seconds, as given: for messages
    expires: float  # time.monotonic() after which nothing more is tried
    max_retry_after: float


def partial_path(remote: RemoteFile, raw_dir: Path) -> Path:
    """Where the bytes of `remote` collect until verified; kept between runs to resume."""
    return raw_dir / PARTIAL_DIR / f"{_pinned_sha256(remote)}-{_safe_name(remote.name)}"


def lock_path(remote: RemoteFile, raw_dir: Path) -> Path:
    """The lock file that serialises fetches of `remote` across processes."""
    return raw_dir / LOCK_DIR / f"{_pinned_sha256(remote)}.lock"


def fetch(
    remote: RemoteFile,
    raw_dir: Path,
    mirrors: Sequence[str] = (),
    *,
    timeout: float = DEFAULT_TIMEOUT,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = DEFAULT_BACKOFF,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline: float = DOWNLOAD_DEADLINE,
    max_retry_after: float = MAX_RETRY_AFTER,
    progress: Progress | None = None,
) -> Path:
    """Put the pinned file at ``<raw_dir>/<sha256>/<name>``, downloading only if needed.

    Mirrors are tried before the published URLs so a team (or CI) reads from its own copy;
    checksums hold for mirrors too. A source that times out, drops the connection or answers
    5xx is asked again after ``backoff * 2**k`` seconds (or its ``Retry-After``), resuming
    with a ``Range`` request; a 4xx, an oversized body, a refused redirect, an unknown host or
    a checksum mismatch moves on to the next source at once.

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
        deadline: seconds for the whole call: waiting for another process's lock, every
            attempt and every source. Bytes of a pinned file received by then are kept, so
            the next call resumes them.
        max_retry_after: the longest pause a server's ``Retry-After`` can ask for.
        progress: called with (bytes so far, total or None) as bytes arrive.

    Returns:
        The path of the verified file.

    Raises:
        ChecksumMismatchError: every source failed, at least one with wrong bytes.
        DownloadError: every source failed otherwise, the deadline passed, or another
            process held the file's lock until the deadline.
    """
    expected = _pinned_sha256(remote)
    _check_arguments(
        timeout=timeout,
        attempts=attempts,
        backoff=backoff,
        max_bytes=max_bytes,
        deadline=deadline,
        max_retry_after=max_retry_after,
    )
    expires = time.monotonic() + deadline
    final = raw_dir / expected / _safe_name(remote.name)
    if _is_verified(final, expected):
        return final
    sources = _sources(remote, mirrors)
    with _exclusive(remote, raw_dir, expires, deadline):
        # Another process may have finished the same file while we waited for the lock.
        if _is_verified(final, expected):
            return final
        partial = partial_path(remote, raw_dir)
        partial.parent.mkdir(parents=True, exist_ok=True)
        if _is_complete(partial, remote):
            logger.info("%s: promoting a complete earlier download", remote.name)
            _promote(partial, final)
            return final
        with _client() as client:
            transfer = _Transfer(
                client=client,
                timeout=timeout,
                attempts=attempts,
                backoff=backoff,
                limit=max_bytes if remote.size is None else min(remote.size, max_bytes),
                size=remote.size,
                progress=progress,
                resume=True,
                deadline=deadline,
                expires=expires,
                max_retry_after=max_retry_after,
            )
            return _fetch_from_sources(remote, sources, transfer, partial, final)


def fetch_source(
    source: str,
    raw_dir: Path,
    *,
    max_bytes: int,
    timeout: float = DEFAULT_TIMEOUT,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = DEFAULT_BACKOFF,
    deadline: float = DOWNLOAD_DEADLINE,
    max_retry_after: float = MAX_RETRY_AFTER,
    progress: Progress | None = None,
) -> tuple[Path, str]:
    """Copy or download a user's own file (no pinned checksum) into the raw store.

    The content decides the place, ``<raw_dir>/<sha256>/<basename>``, so the same workbook
    always lands on the same path and an edited one on a new path.

    Args:
        source: a local path, a ``file://`` URL or an ``http(s)://`` URL.
        raw_dir: the raw store.
        max_bytes: the largest file the caller will read. No default: without a pinned size
            only the reader knows, and a larger body is refused while it streams, before it
            fills the disk.
        timeout, attempts, backoff, deadline, max_retry_after, progress: as for `fetch`.

    Returns:
        The stored path and its sha256.

    Raises:
        SourceNotFoundError: a local source does not exist (a `FileNotFoundError`).
        DownloadError: the source could not be copied or downloaded within the bounds.
    """
    _check_arguments(
        timeout=timeout,
        attempts=attempts,
        backoff=backoff,
        max_bytes=max_bytes,
        deadline=deadline,
        max_retry_after=max_retry_after,
    )
    expires = time.monotonic() + deadline
    location = _locate(source)
    name = _safe_name(_basename(location), what=f"the file name in source={source!r}")
    if isinstance(location, Path) and not location.is_file():
        raise SourceNotFoundError(
            f"Expected `source` to be an existing file. Received: source={source!r} "
            f"(no file at {location})"
        )
    partial_dir = raw_dir / PARTIAL_DIR
    partial_dir.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f"{name}.", suffix=".part", dir=partial_dir)
    os.close(fd)
    partial = Path(temporary)
    try:
        with _client() as client:
            # No resuming: without a pinned hash, spliced bytes of two versions go unnoticed.
            transfer = _Transfer(
                client=client,
                timeout=timeout,
                attempts=attempts,
                backoff=backoff,
                limit=max_bytes,
                size=None,
                progress=progress,
                resume=False,
                deadline=deadline,
                expires=expires,
                max_retry_after=max_retry_after,
            )
            _transfer_from(transfer, location, partial)
        digest = sha256_file(partial)
        final = raw_dir / digest / name
        _promote(partial, final)
    except _SourceError as error:
        raise DownloadError(
            f"Could not fetch source={source!r}: {error}", [(source, str(error))]
        ) from None
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
    unreachable = expired = False
    for label, location in sources:
        logger.info("%s: fetching from %s", remote.name, label)
        try:
            digest = _fetch_digest(transfer, location, partial, expected)
        except _SourceError as error:
            logger.info("%s: %s failed: %s", remote.name, label, error)
            failures.append((label, str(error)))
            unreachable |= isinstance(error, _Unreachable)
            expired = isinstance(error, _Expired)
            if expired:
                break
            continue
        if digest == expected:
            _promote(partial, final)
            _note_origin(final, label)
            logger.info("%s: verified and stored at %s", remote.name, final)
            return final
        logger.info("%s: checksum mismatch from %s (sha256 %s)", remote.name, label, digest)
        failures.append(
            (label, f"checksum mismatch. Expected sha256={expected}. Received: sha256={digest}")
        )
        received.append(digest)
    raise _all_failed(remote, failures, received, expired=expired, unreachable=unreachable)


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
    remote: RemoteFile,
    failures: Sequence[tuple[str, str]],
    received: Sequence[str],
    *,
    expired: bool,
    unreachable: bool,
) -> DownloadError:
    """One line: what each source said, as the user named it (never a raw-store path)."""
    if not failures:
        return DownloadError(
            f"Expected at least one source for {remote.name!r} (a mirror or a URL). "
            "Received: mirrors=() and urls=()"
        )
    said = "; ".join(f"{label}: {answer}" for label, answer in failures)
    if expired:
        within = " within its deadline"
    elif len(failures) == 1:
        within = ""
    else:
        within = f" from any of its {len(failures)} sources"
    message = f"Could not fetch {remote.name!r}{within}: {said}"
    if unreachable:
        message += f"; {MIRROR_HINT}"
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
    """Ask one URL up to `attempts` times, pausing with backoff (or Retry-After) in between."""
    last = _Retry("")
    for attempt in range(1, transfer.attempts + 1):
        if attempt > 1:
            _pause(transfer, url, last, attempt)
        try:
            return _stream_once(transfer, url, partial)
        except _Retry as error:
            last = error
        except httpx.HTTPError as error:
            last = _transient(error, previous=last)
    raise _SourceError(f"{last} after {transfer.attempts} attempts")


def _transient(error: httpx.HTTPError, *, previous: _Retry) -> _Retry:
    """What a failed request means for the next attempt; raises when there is none worth it.

    An unknown host will not appear in the next second, so it ends the source at once; a
    refused connection gets one more try (a server restarting), not the whole budget.
    """
    if isinstance(error, httpx.TimeoutException):
        return _Retry("timed out")
    if isinstance(error, httpx.ConnectError):
        if _caused_by(error, socket.gaierror):
            raise _Unreachable("could not be reached (name resolution failed)") from None
        if _caused_by(error, ConnectionRefusedError):
            if previous.refused:
                raise _Unreachable(
                    f"could not be reached (connection refused, {REFUSED_ATTEMPTS} attempts)"
                ) from None
            return _Retry("connection refused", refused=True)
    if isinstance(error, httpx.NetworkError | httpx.RemoteProtocolError):
        return _Retry(f"connection failed ({error})")
    raise _SourceError(f"{type(error).__name__}: {error}") from None


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    """Whether `kind` is in the chain of causes (httpx wraps httpcore, which wraps OSError)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _pause(transfer: _Transfer, url: str, last: _Retry, attempt: int) -> None:
    """Sleep before the next attempt, unless the deadline would pass first."""
    delay = transfer.backoff * 2 ** (attempt - 2)
    if last.after is not None:
        delay = min(last.after, transfer.max_retry_after)
    if time.monotonic() + delay >= transfer.expires:
        raise _Expired(
            f"{last}; the deadline of {transfer.deadline:g} s leaves no time for the "
            f"{delay:g} s pause before attempt {attempt}"
        )
    logger.info(
        "retrying %s in %.2f s after: %s (attempt %d of %d)",
        url,
        delay,
        last,
        attempt,
        transfer.attempts,
    )
    time.sleep(delay)


def _stream_once(transfer: _Transfer, url: str, partial: Path) -> bool:
    offset = _resume_offset(transfer, partial)
    headers: dict[str, str] = {}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        logger.info("resuming %s from byte %d", url, offset)
    with _open(transfer, url, headers) as response:
        offset = _accepted_offset(response, offset, partial)
        total = _announced_total(response, offset)
        _check_limit(transfer, total)
        # No chunk size: a chunker would hold back bytes received before a connection broke.
        chunks = response.iter_raw()
        _write_chunks(transfer, chunks, partial, offset=offset, total=total or transfer.size)
    return offset > 0


@contextlib.contextmanager
def _open(transfer: _Transfer, url: str, headers: dict[str, str]) -> Iterator[httpx.Response]:
    """GET `url`, following at most `MAX_REDIRECTS` redirects that `_redirect_target` allows.

    Redirects are followed here rather than by httpx so that each hop is checked: a pinned
    checksum guards the bytes, but not an unpinned source nor the privacy of the request.
    """
    target = httpx.URL(url)
    for _ in range(MAX_REDIRECTS + 1):
        request = transfer.client.build_request(
            "GET", target, headers=headers, timeout=_timeouts(transfer)
        )
        response = transfer.client.send(request, stream=True)
        try:
            if not response.is_redirect:
                yield response
                return
            target = _redirect_target(response)
            logger.info("%s redirects to %s", response.url, target)
        finally:
            response.close()
    raise _SourceError(f"refused: more than {MAX_REDIRECTS} redirects (MAX_REDIRECTS)")


def _redirect_target(response: httpx.Response) -> httpx.URL:
    """Where a redirect leads, if it leads somewhere as safe as where it came from.

    Within one host anything but a downgrade from https to http is followed; to another host
    only https to https, so a plain-http answer (which anyone on the path can forge) never
    sends us elsewhere.
    """
    origin = response.url
    target = origin.join(response.headers["Location"])
    if target.scheme not in HTTP_SCHEMES:
        reason = "only http(s) is followed"
    elif origin.scheme == "https" and target.scheme != "https":
        reason = "https is never downgraded to http"
    elif target.host != origin.host and origin.scheme != "https":
        reason = "a redirect to another host is followed only from https to https"
    else:
        return target
    raise _SourceError(f"refused redirect from {origin} to {target}: {reason}")


def _timeouts(transfer: _Transfer) -> httpx.Timeout:
    """The request's timeouts, none longer than what is left before the deadline.

    httpx fixes the read timeout when a request starts, so a server that stalls mid-body can
    overrun the deadline by at most that timeout; one that drips is stopped between chunks.
    """
    remaining = transfer.expires - time.monotonic()
    if remaining <= 0:
        raise _Expired(f"the deadline of {transfer.deadline:g} s passed")
    read = min(transfer.timeout, remaining)
    return httpx.Timeout(read, connect=min(read, CONNECT_TIMEOUT))


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
        after = _retry_after(response)
        asked = "" if after is None else f" (Retry-After {after:g} s)"
        raise _Retry(f"HTTP {status}{asked}", after=after)
    raise _SourceError(f"HTTP {status}")


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait (a number or an HTTP date), if it asks."""
    if response.status_code not in RETRY_AFTER_STATUSES:
        return None
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None  # unreadable: fall back to our own backoff
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


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
    """Append (or write from zero) while enforcing the size limit and the deadline.

    Both are checked per chunk, on the bytes actually sent: a body larger than announced is
    cut as it crosses the limit, and a server that drips is cut as the deadline passes. Bytes
    written before the deadline stay, for the next call to resume.
    """
    written = offset
    try:
        with open(partial, "ab" if offset else "wb") as handle:
            for chunk in chunks:
                written += len(chunk)
                if written > transfer.limit:
                    announced = "none announced" if total is None else f"{total} announced"
                    raise _Refused(
                        f"refused: body exceeds the limit of {transfer.limit} bytes ({announced})"
                    )
                handle.write(chunk)
                fault_point("download")
                if transfer.progress is not None:
                    transfer.progress(written, total)
                if time.monotonic() > transfer.expires:
                    raise _Expired(
                        f"the deadline of {transfer.deadline:g} s passed after {written} of "
                        f"{total if total is not None else 'unknown'} bytes"
                    )
    except _Refused:
        partial.unlink(missing_ok=True)
        raise


def _promote(partial: Path, final: Path) -> None:
    """Rename verified bytes into place; same file system, so readers see all or nothing."""
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, final)


def fetched_from(path: Path) -> str | None:
    """The mirror or URL that delivered the verified file at `path`; None if not recorded.

    A report says what really provided the bytes: with a mirror set that is the mirror, not
    the published URL. None for a file promoted from an earlier run's complete partial
    download, or stored before the source was noted.
    """
    try:
        return path.with_name(path.name + ORIGIN_SUFFIX).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _note_origin(final: Path, label: str) -> None:
    with atomic_path(final.with_name(final.name + ORIGIN_SUFFIX)) as temporary:
        temporary.write_text(label, encoding="utf-8")


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
def _exclusive(
    remote: RemoteFile, raw_dir: Path, expires: float, deadline: float
) -> Iterator[None]:
    """Serialise fetches of one file across threads and processes sharing the raw store.

    Two writers appending to one partial file would interleave bytes. The wait counts toward
    the deadline: a holder that hangs (or a download slower than ours may take) ends in a
    clear error, not a hang. The lock file stays behind (empty): deleting it would race with
    the next waiter.
    """
    path = lock_path(remote, raw_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(path, timeout=max(0.0, expires - time.monotonic()))
    try:
        lock.acquire()
    except filelock.Timeout:
        raise DownloadError(
            f"Could not fetch {remote.name!r} within its deadline of {deadline:g} s: another "
            "process held its download lock all that time (is another trainflow run "
            "fetching it?)"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _client() -> httpx.Client:
    """One client per file; timeouts are set per request (see `_timeouts`)."""
    return httpx.Client(follow_redirects=False, headers=REQUEST_HEADERS)


def _sources(remote: RemoteFile, mirrors: Sequence[str]) -> list[tuple[str, Location]]:
    located = [_join(_locate(mirror), remote.mirror_path) for mirror in mirrors]
    located += [_locate(url) for url in remote.urls]
    return [(str(location), location) for location in located]


def local_source(source: str) -> Path | None:
    """The file a local `source` (a path or a ``file://`` URL) names; None for http(s).

    Raises:
        InputError: `source` is neither a local path nor an http(s) URL (a `ValueError`).
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
    raise InputError(
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
        raise InputError(f"Expected {what} to be a plain file name. Received: {name!r}")
    return name


def _pinned_sha256(remote: RemoteFile) -> str:
    if not remote.sha256:
        raise ValueError(
            f"Expected a pinned sha256 for {remote.name!r}; use fetch_source for unpinned "
            f"files. Received: sha256={remote.sha256!r}"
        )
    return remote.sha256


def _check_arguments(
    *,
    timeout: float,
    attempts: int,
    backoff: float,
    max_bytes: int,
    deadline: float,
    max_retry_after: float,
) -> None:
    if timeout <= 0:
        raise ValueError(f"Expected timeout > 0 seconds. Received: timeout={timeout}")
    if attempts < 1:
        raise ValueError(f"Expected attempts >= 1. Received: attempts={attempts}")
    if backoff < 0:
        raise ValueError(f"Expected backoff >= 0 seconds. Received: backoff={backoff}")
    if max_bytes < 1:
        raise ValueError(f"Expected max_bytes >= 1. Received: max_bytes={max_bytes}")
    if deadline <= 0:
        raise ValueError(f"Expected deadline > 0 seconds. Received: deadline={deadline}")
    if max_retry_after < 0:
        raise ValueError(
            f"Expected max_retry_after >= 0 seconds. Received: max_retry_after={max_retry_after}"
        )
