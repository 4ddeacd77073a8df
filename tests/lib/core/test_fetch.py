"""The downloader against a real HTTP server on 127.0.0.1 whose behaviour each test scripts."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest

from lib.core import fetch as fetch_module
from lib.core.fetch import (
    ChecksumMismatchError,
    DownloadError,
    fetch,
    fetch_source,
    fetched_from,
    local_source,
    lock_path,
    partial_path,
)
from lib.core.remote import RemoteFile

PAYLOAD = np.random.default_rng(7).bytes(4096)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
NAME = "payload.bin"
MIRROR_PATH = f"sets/{NAME}"
FAST_BACKOFF = 0.001  # seconds: retries stay instant in tests
STALL_TIMEOUT = 0.3
STALL_CAP_SECONDS = 30  # a safety bound only; the fixture releases stalls at teardown
HALF = len(PAYLOAD) // 2
POLL_SECONDS = 0.02  # how often serve_forever checks for shutdown: keeps teardown quick
SOURCE_MAX_BYTES = 2 * len(PAYLOAD)  # the reader's limit a caller of fetch_source passes
DRIP_SECONDS = 0.05  # pause between the bytes a dripping server sends
SHORT_DEADLINE = 1.0  # seconds: long enough for a loopback request, short for a test
LOCK_HOLDER = """
import sys, filelock
lock = filelock.FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""

Behaviour = Callable[["_Handler"], None]


class Script:
    """What the server does, per path, request after request (the last behaviour repeats)."""

    def __init__(self) -> None:
        self.base = ""
        self.release = threading.Event()
        self._routes: dict[str, list[Behaviour]] = {}
        self._requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()

    def route(self, path: str, *behaviours: Behaviour) -> str:
        self._routes[path] = list(behaviours)
        return self.base + path

    def take(self, path: str, headers: dict[str, str]) -> Behaviour:
        with self._lock:
            self._requests.append((path, headers))
            queue = self._routes.get(path)
            if not queue:
                return fail(404)
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def count(self, path: str | None = None) -> int:
        return len(self.headers(path))

    def headers(self, path: str | None = None) -> list[dict[str, str]]:
        with self._lock:
            return [seen for asked, seen in self._requests if path in (None, asked)]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    script: Script


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        headers = {key.lower(): value for key, value in self.headers.items()}
        self.server.script.take(self.path, headers)(self)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def head(self, status: int, length: int | None, **extra: str) -> None:
        self.send_response(status)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for key, value in extra.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()


def _requested_start(handler: _Handler) -> int | None:
    value = handler.headers.get("Range", "")
    if not value.startswith("bytes=") or not value.endswith("-"):
        return None
    return int(value[len("bytes=") : -1])


def serve(body: bytes, *, honour_range: bool = True, announce: bool = True) -> Behaviour:
    def behave(handler: _Handler) -> None:
        start = _requested_start(handler) if honour_range else None
        if start is None:
            handler.head(200, len(body) if announce else None)
            handler.wfile.write(body)
            return
        rest = body[start:]
        span = f"bytes {start}-{len(body) - 1}/{len(body)}"
        handler.head(206, len(rest), Content_Range=span)
        handler.wfile.write(rest)

    return behave


def fail(status: int, **headers: str) -> Behaviour:
    def behave(handler: _Handler) -> None:
        handler.head(status, 0, **headers)

    return behave


def redirect(location: str, status: int = 302) -> Behaviour:
    return fail(status, Location=location)


def drip(body: bytes, release: threading.Event) -> Behaviour:
    """Announce the whole body, then send it a byte at a time, slowly, until the test ends."""

    def behave(handler: _Handler) -> None:
        handler.head(200, len(body))
        for byte in body:
            if release.wait(DRIP_SECONDS):
                return
            try:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
            except OSError:  # the client hung up: what the deadline is for
                return

    return behave


def flood(size: int, release: threading.Event) -> Behaviour:
    """Send `size` bytes without a Content-Length, then hang: only a streaming cap ends it."""

    def behave(handler: _Handler) -> None:
        handler.head(200, None)
        try:
            handler.wfile.write(b"x" * size)
            handler.wfile.flush()
        except OSError:
            return
        release.wait(STALL_CAP_SECONDS)

    return behave


def truncate(body: bytes) -> Behaviour:
    """Advertise the whole body, send half, close: the client sees a broken transfer."""

    def behave(handler: _Handler) -> None:
        handler.head(200, len(body))
        handler.wfile.write(body[:HALF])
        handler.wfile.flush()
        handler.close_connection = True

    return behave


def stall(body: bytes, release: threading.Event) -> Behaviour:
    """Send the headers and a few bytes, then hang until the test is over."""

    def behave(handler: _Handler) -> None:
        handler.head(200, len(body))
        handler.wfile.write(body[:16])
        handler.wfile.flush()
        release.wait(STALL_CAP_SECONDS)

    return behave


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)


def _serve_script(host: str) -> Iterator[Script]:
    """A scripted server on 127.0.0.1 whose URLs name it as `host` (another name, another host)."""
    script = Script()
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.script = script
    script.base = f"http://{host}:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(POLL_SECONDS,), daemon=True)
    thread.start()
    try:
        yield script
    finally:
        script.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def server(no_proxy: None) -> Iterator[Script]:
    yield from _serve_script("127.0.0.1")


@pytest.fixture
def other_host(no_proxy: None) -> Iterator[Script]:
    """A second server reached as `localhost`: to httpx a different host from 127.0.0.1."""
    yield from _serve_script("localhost")


def remote(*urls: str, size: int | None = len(PAYLOAD), sha256: str = PAYLOAD_SHA) -> RemoteFile:
    return RemoteFile(name=NAME, mirror_path=MIRROR_PATH, urls=urls, sha256=sha256, size=size)


def final_path(raw_dir: Path) -> Path:
    return raw_dir / PAYLOAD_SHA / NAME


def leftovers(raw_dir: Path) -> list[str]:
    partials = raw_dir / ".partial"
    return sorted(path.name for path in partials.iterdir()) if partials.is_dir() else []


def wrong(body: bytes) -> bytes:
    return bytes(byte ^ 0xFF for byte in body)


# --- the happy path and retries ------------------------------------------------------------


def test_fetch_streams_to_the_content_addressed_path(server: Script, tmp_path: Path) -> None:
    url = server.route("/a/payload.bin", serve(PAYLOAD))
    seen: list[tuple[int, int | None]] = []
    path = fetch(remote(url), tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert path == final_path(tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert server.count() == 1
    assert leftovers(tmp_path) == []
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_fetch_retries_5xx_then_succeeds(
    server: Script, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.route("/a", fail(500), fail(503), serve(PAYLOAD))
    with caplog.at_level(logging.INFO, logger="trainflow.fetch"):
        path = fetch(remote(url), tmp_path, attempts=4, backoff=FAST_BACKOFF)
    assert path.read_bytes() == PAYLOAD
    assert server.count("/a") == 3
    assert "retrying" in caplog.text and "HTTP 503" in caplog.text


def test_fetch_backs_off_exponentially(
    server: Script, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(fetch_module.time, "sleep", pauses.append)
    url = server.route("/a", fail(502), fail(502), fail(502), serve(PAYLOAD))
    fetch(remote(url), tmp_path, attempts=4, backoff=0.5)
    assert pauses == [0.5, 1.0, 2.0]


def test_fetch_gives_up_on_5xx_after_its_attempts(server: Script, tmp_path: Path) -> None:
    url = server.route("/a", fail(503))
    with pytest.raises(DownloadError, match=r"HTTP 503 after 3 attempts") as caught:
        fetch(remote(url), tmp_path, attempts=3, backoff=FAST_BACKOFF)
    assert not isinstance(caught.value, ChecksumMismatchError)
    assert str(caught.value) == f"Could not fetch {NAME!r}: {url}: HTTP 503 after 3 attempts"
    assert server.count("/a") == 3
    assert not final_path(tmp_path).exists()


def test_fetch_moves_on_after_a_404_without_retrying(server: Script, tmp_path: Path) -> None:
    missing = server.route("/missing", fail(404))
    present = server.route("/present", serve(PAYLOAD))
    path = fetch(remote(missing, present), tmp_path, attempts=4, backoff=FAST_BACKOFF)
    assert path.read_bytes() == PAYLOAD
    assert server.count("/missing") == 1
    assert server.count("/present") == 1


def test_fetch_reports_what_every_source_said(server: Script, tmp_path: Path) -> None:
    missing = server.route("/missing", fail(404))
    broken = server.route("/broken", fail(500))
    with pytest.raises(DownloadError, match=r"any of its 2 sources") as caught:
        fetch(remote(missing, broken), tmp_path, attempts=2, backoff=FAST_BACKOFF)
    assert caught.value.failures == (
        (missing, "HTTP 404"),
        (broken, "HTTP 500 after 2 attempts"),
    )


def test_fetch_tries_a_refused_connection_only_once_more(
    no_proxy: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/a"
    pattern = rf"^Could not fetch {NAME!r}: {url}: could not be reached \(connection refused, "
    pattern += r"2 attempts\); set TRAINFLOW_MIRROR=/path/to/mirror or a base URL to use a copy$"
    with (
        caplog.at_level(logging.INFO, logger="trainflow.fetch"),
        pytest.raises(DownloadError, match=pattern),
    ):
        fetch(remote(url), tmp_path, attempts=4, backoff=FAST_BACKOFF)
    assert caplog.text.count("retrying") == 1


def test_fetch_does_not_retry_an_unknown_host(
    no_proxy: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = "http://nonexistent.invalid/payload.bin"
    with (
        caplog.at_level(logging.INFO, logger="trainflow.fetch"),
        pytest.raises(DownloadError) as caught,
    ):
        fetch(remote(url), tmp_path, attempts=4, backoff=FAST_BACKOFF)
    assert str(caught.value) == (
        f"Could not fetch {NAME!r}: {url}: could not be reached (name resolution failed); "
        "set TRAINFLOW_MIRROR=/path/to/mirror or a base URL to use a copy"
    )
    assert caplog.text.count("fetching from") == 1
    assert "retrying" not in caplog.text


def test_fetch_moves_on_from_an_unknown_host_to_the_next_source(
    server: Script, tmp_path: Path
) -> None:
    url = server.route("/a", serve(PAYLOAD))
    unknown = "http://nonexistent.invalid/payload.bin"
    assert fetch(remote(unknown, url), tmp_path, backoff=FAST_BACKOFF).read_bytes() == PAYLOAD


# --- Retry-After ---------------------------------------------------------------------------


def test_fetch_waits_as_long_as_retry_after_asks_up_to_its_cap(
    server: Script, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(fetch_module.time, "sleep", pauses.append)
    url = server.route(
        "/a",
        fail(429, Retry_After="2"),
        fail(503, Retry_After="3600"),
        fail(500, Retry_After="3600"),  # not a status whose Retry-After counts
        serve(PAYLOAD),
    )
    fetch(remote(url), tmp_path, attempts=4, backoff=0.25, max_retry_after=5.0)
    assert pauses == [2.0, 5.0, 1.0]


def test_fetch_reads_retry_after_as_an_http_date(
    server: Script, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(fetch_module.time, "sleep", pauses.append)
    when = formatdate(time.time() + 30, usegmt=True)
    url = server.route("/a", fail(503, Retry_After=when), serve(PAYLOAD))
    fetch(remote(url), tmp_path, attempts=2, backoff=FAST_BACKOFF)
    assert len(pauses) == 1 and 25 <= pauses[0] <= 30


def test_fetch_does_not_wait_past_its_deadline_for_retry_after(
    server: Script, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(fetch_module.time, "sleep", pauses.append)
    url = server.route("/a", fail(429, Retry_After="30"), serve(PAYLOAD))
    with pytest.raises(
        DownloadError, match=r"within its deadline: .*HTTP 429 \(Retry-After 30 s\)"
    ):
        fetch(remote(url), tmp_path, attempts=2, deadline=10.0)
    assert pauses == []
    assert server.count("/a") == 1


# --- the deadline --------------------------------------------------------------------------


def test_fetch_stops_a_dripping_server_at_the_deadline(server: Script, tmp_path: Path) -> None:
    dripping = server.route("/drip", drip(PAYLOAD, server.release))
    spare = server.route("/spare", serve(PAYLOAD))
    with pytest.raises(DownloadError) as caught:
        fetch(remote(dripping, spare), tmp_path, deadline=SHORT_DEADLINE, backoff=FAST_BACKOFF)
    message = str(caught.value)
    assert message.startswith(f"Could not fetch {NAME!r} within its deadline: {dripping}: ")
    assert f"the deadline of {SHORT_DEADLINE:g} s passed after" in message
    assert f"of {len(PAYLOAD)} bytes" in message
    assert str(tmp_path) not in message
    # The deadline covers every source: the spare one is not asked once time is up.
    assert server.count("/drip") == 1 and server.count("/spare") == 0
    # What did arrive is kept for the next run to resume.
    assert 0 < partial_path(remote(dripping), tmp_path).stat().st_size < len(PAYLOAD)


def test_fetch_gives_up_when_the_next_backoff_would_pass_the_deadline(
    server: Script, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(fetch_module.time, "sleep", pauses.append)
    url = server.route("/a", fail(503))
    with pytest.raises(DownloadError, match=r"no time for the 1 s pause before attempt 3"):
        fetch(remote(url), tmp_path, attempts=4, backoff=0.5, deadline=1.0)
    assert pauses == [0.5]
    assert server.count("/a") == 2


def test_fetch_source_is_bounded_by_the_deadline(server: Script, tmp_path: Path) -> None:
    url = server.route("/book.xlsx", drip(PAYLOAD, server.release))
    with pytest.raises(DownloadError, match=r"^Could not fetch source='.*book\.xlsx': the dead"):
        fetch_source(url, tmp_path, max_bytes=SOURCE_MAX_BYTES, deadline=SHORT_DEADLINE)
    assert leftovers(tmp_path) == []


# --- redirects -----------------------------------------------------------------------------


def test_fetch_follows_a_redirect_within_the_host(server: Script, tmp_path: Path) -> None:
    url = server.route("/old", redirect("/new", status=301))
    server.route("/new", serve(PAYLOAD))
    assert fetch(remote(url), tmp_path, backoff=FAST_BACKOFF).read_bytes() == PAYLOAD
    assert server.count("/old") == 1 and server.count("/new") == 1


def test_fetch_refuses_a_redirect_from_http_to_another_host(
    server: Script, other_host: Script, tmp_path: Path
) -> None:
    elsewhere = other_host.route("/b", serve(PAYLOAD))
    url = server.route("/a", redirect(elsewhere))
    expected = (
        f"Could not fetch {NAME!r}: {url}: refused redirect from {url} to {elsewhere}: "
        "a redirect to another host is followed only from https to https"
    )
    with pytest.raises(DownloadError) as caught:
        fetch(remote(url), tmp_path, attempts=4, backoff=FAST_BACKOFF)
    assert str(caught.value) == expected
    assert server.count("/a") == 1  # refused, not retried
    assert other_host.count() == 0


@pytest.mark.parametrize(
    ("origin", "location", "refusal"),
    [
        ("https://a.example/x", "http://a.example/y", "https is never downgraded to http"),
        ("https://a.example/x", "http://b.example/y", "https is never downgraded to http"),
        ("https://a.example/x", "ftp://a.example/y", "only http(s) is followed"),
        ("https://a.example/x", "https://b.example/y", None),
        ("http://a.example/x", "https://a.example/y", None),
    ],
)
def test_redirect_rules_for_https(origin: str, location: str, refusal: str | None) -> None:
    # No TLS server in the tests: the rule itself is checked on a response as httpx makes it.
    response = httpx.Response(
        302, headers={"Location": location}, request=httpx.Request("GET", origin)
    )
    if refusal is None:
        assert fetch_module._redirect_target(response) == httpx.URL(location)
        return
    with pytest.raises(fetch_module._SourceError, match=re.escape(refusal)):
        fetch_module._redirect_target(response)


def test_fetch_stops_following_a_redirect_loop(server: Script, tmp_path: Path) -> None:
    url = server.route("/loop", redirect("/loop"))
    with pytest.raises(DownloadError, match=r"refused: more than 5 redirects"):
        fetch(remote(url), tmp_path, backoff=FAST_BACKOFF)
    assert server.count("/loop") == 6


# --- the lock ------------------------------------------------------------------------------


def test_fetch_names_a_lock_held_by_another_process(server: Script, tmp_path: Path) -> None:
    url = server.route("/a", serve(PAYLOAD))
    lock = lock_path(remote(url), tmp_path)
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        with pytest.raises(DownloadError, match=r"another process held its download lock"):
            fetch(remote(url), tmp_path, deadline=SHORT_DEADLINE)
    finally:
        holder.communicate(timeout=STALL_CAP_SECONDS)  # closing stdin releases the lock
    assert server.count() == 0
    assert fetch(remote(url), tmp_path, deadline=SHORT_DEADLINE) == final_path(tmp_path)


# --- timeouts, truncation and resuming -----------------------------------------------------


def test_fetch_times_out_on_a_stalled_server(server: Script, tmp_path: Path) -> None:
    url = server.route("/a", stall(PAYLOAD, server.release))
    with pytest.raises(DownloadError, match=r"timed out after 2 attempts"):
        fetch(remote(url), tmp_path, attempts=2, backoff=0.001, timeout=STALL_TIMEOUT)
    assert server.count("/a") == 2
    assert not final_path(tmp_path).exists()
    # The bytes that did arrive are kept aside for the next run to resume from.
    assert partial_path(remote(url), tmp_path).read_bytes() == PAYLOAD[:16]


def test_fetch_resumes_after_a_stall(server: Script, tmp_path: Path) -> None:
    url = server.route("/a", stall(PAYLOAD, server.release), serve(PAYLOAD))
    path = fetch(remote(url), tmp_path, attempts=2, backoff=0.001, timeout=STALL_TIMEOUT)
    assert path.read_bytes() == PAYLOAD
    assert server.headers("/a")[1]["range"] == "bytes=16-"


def test_fetch_resumes_a_truncated_body_with_range(
    server: Script, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.route("/a", truncate(PAYLOAD), serve(PAYLOAD))
    with caplog.at_level(logging.INFO, logger="trainflow.fetch"):
        path = fetch(remote(url), tmp_path, attempts=3, backoff=FAST_BACKOFF)
    assert path.read_bytes() == PAYLOAD
    first, second = server.headers("/a")
    assert "range" not in first
    assert second["range"] == f"bytes={HALF}-"
    assert f"from byte {HALF}" in caplog.text
    assert leftovers(tmp_path) == []


def test_fetch_restarts_when_the_server_ignores_range(server: Script, tmp_path: Path) -> None:
    url = server.route("/a", truncate(PAYLOAD), serve(PAYLOAD, honour_range=False))
    path = fetch(remote(url), tmp_path, attempts=3, backoff=FAST_BACKOFF)
    assert path.read_bytes() == PAYLOAD
    assert server.headers("/a")[1]["range"] == f"bytes={HALF}-"


def test_fetch_redownloads_when_stale_partial_bytes_spoil_the_hash(
    server: Script, tmp_path: Path
) -> None:
    spec = remote(server.route("/a", serve(PAYLOAD)))
    stale = partial_path(spec, tmp_path)
    stale.parent.mkdir(parents=True)
    stale.write_bytes(wrong(PAYLOAD[:HALF]))
    path = fetch(spec, tmp_path, backoff=FAST_BACKOFF)
    assert path.read_bytes() == PAYLOAD
    first, second = server.headers("/a")
    assert first["range"] == f"bytes={HALF}-"
    assert "range" not in second


def test_fetch_promotes_a_complete_partial_without_requests(server: Script, tmp_path: Path) -> None:
    spec = remote(server.route("/a", fail(500)))
    done = partial_path(spec, tmp_path)
    done.parent.mkdir(parents=True)
    done.write_bytes(PAYLOAD)
    assert fetch(spec, tmp_path, backoff=FAST_BACKOFF).read_bytes() == PAYLOAD
    assert server.count() == 0
    assert leftovers(tmp_path) == []


# --- checksums -----------------------------------------------------------------------------


def test_fetch_rejects_wrong_bytes_from_every_source(server: Script, tmp_path: Path) -> None:
    bad, worse = wrong(PAYLOAD), PAYLOAD[::-1]
    first = server.route("/first", serve(bad))
    second = server.route("/second", serve(worse))
    with pytest.raises(ChecksumMismatchError, match=rf"Expected sha256={PAYLOAD_SHA}") as caught:
        fetch(remote(first, second), tmp_path, attempts=4, backoff=FAST_BACKOFF)
    received = (hashlib.sha256(bad).hexdigest(), hashlib.sha256(worse).hexdigest())
    assert caught.value.received == received
    assert all(f"Received: sha256={digest}" in str(caught.value) for digest in received)
    assert server.count("/first") == 1 and server.count("/second") == 1
    assert not final_path(tmp_path).exists()
    assert leftovers(tmp_path) == []


def test_fetch_moves_on_to_a_good_source_after_a_mismatch(server: Script, tmp_path: Path) -> None:
    bad = server.route("/bad", serve(wrong(PAYLOAD)))
    good = server.route("/good", serve(PAYLOAD))
    assert fetch(remote(bad, good), tmp_path, backoff=FAST_BACKOFF).read_bytes() == PAYLOAD


def test_fetch_returns_an_existing_verified_file_without_requests(
    server: Script, tmp_path: Path
) -> None:
    url = server.route("/a", fail(500))
    final_path(tmp_path).parent.mkdir(parents=True)
    final_path(tmp_path).write_bytes(PAYLOAD)
    assert fetch(remote(url), tmp_path, backoff=FAST_BACKOFF) == final_path(tmp_path)
    assert server.count() == 0
    assert fetched_from(final_path(tmp_path)) is None  # stored before sources were noted


def test_fetch_replaces_a_corrupted_final_file(server: Script, tmp_path: Path) -> None:
    url = server.route("/a", serve(PAYLOAD))
    final_path(tmp_path).parent.mkdir(parents=True)
    final_path(tmp_path).write_bytes(wrong(PAYLOAD))
    assert fetch(remote(url), tmp_path, backoff=FAST_BACKOFF).read_bytes() == PAYLOAD
    assert server.count("/a") == 1


# --- bounds --------------------------------------------------------------------------------


@pytest.mark.parametrize("announce", [True, False], ids=["content-length", "until-close"])
def test_fetch_refuses_a_body_larger_than_the_size(
    server: Script, tmp_path: Path, announce: bool
) -> None:
    url = server.route("/a", serve(PAYLOAD + PAYLOAD, announce=announce))
    with pytest.raises(DownloadError, match=r"refused: body .*exceeds the limit of 4096"):
        fetch(remote(url), tmp_path, attempts=4, backoff=FAST_BACKOFF)
    assert server.count("/a") == 1
    assert not final_path(tmp_path).exists()
    assert leftovers(tmp_path) == []


def test_fetch_applies_max_bytes_when_the_size_is_unknown(server: Script, tmp_path: Path) -> None:
    url = server.route("/a", serve(PAYLOAD))
    with pytest.raises(DownloadError, match=r"exceeds the limit of 1000"):
        fetch(remote(url, size=None), tmp_path, max_bytes=1000, backoff=FAST_BACKOFF)


# --- mirrors -------------------------------------------------------------------------------


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    root = tmp_path / "mirror"
    (root / "sets").mkdir(parents=True)
    (root / MIRROR_PATH).write_bytes(PAYLOAD)
    return root


@pytest.mark.parametrize("as_url", [False, True], ids=["directory", "file-url"])
def test_fetch_reads_a_local_mirror_before_any_url(
    server: Script, tmp_path: Path, mirror: Path, as_url: bool
) -> None:
    url = server.route("/a", serve(PAYLOAD))
    where = mirror.as_uri() if as_url else str(mirror)
    path = fetch(remote(url), tmp_path / "raw", (where,), backoff=FAST_BACKOFF)
    assert path.read_bytes() == PAYLOAD
    assert server.count() == 0
    assert fetched_from(path) == str(mirror / MIRROR_PATH)  # what a report names as source


def test_fetch_reads_an_http_mirror(server: Script, tmp_path: Path) -> None:
    server.route(f"/mirror/{MIRROR_PATH}", serve(PAYLOAD))
    url = server.route("/a", fail(500))
    path = fetch(remote(url), tmp_path, (server.base + "/mirror/",), backoff=FAST_BACKOFF)
    assert path.read_bytes() == PAYLOAD
    assert server.count("/a") == 0


def test_fetch_enforces_checksums_on_mirrors(server: Script, tmp_path: Path, mirror: Path) -> None:
    (mirror / MIRROR_PATH).write_bytes(wrong(PAYLOAD))
    url = server.route("/a", serve(PAYLOAD))
    path = fetch(remote(url), tmp_path / "raw", (str(mirror),), backoff=FAST_BACKOFF)
    assert path.read_bytes() == PAYLOAD
    assert server.count("/a") == 1
    assert fetched_from(path) == url  # the mirror's wrong bytes were not used


def test_fetch_skips_a_mirror_without_the_file(server: Script, tmp_path: Path) -> None:
    url = server.route("/a", fail(404))
    absent = tmp_path / "absent"
    with pytest.raises(DownloadError, match=rf"{absent}/{MIRROR_PATH}: not found"):
        fetch(remote(url), tmp_path / "raw", (str(absent),), backoff=FAST_BACKOFF)


def test_fetch_downloads_once_for_concurrent_callers(server: Script, tmp_path: Path) -> None:
    url = server.route("/a", serve(PAYLOAD))
    results: list[Path] = []

    def work() -> None:
        results.append(fetch(remote(url), tmp_path, backoff=FAST_BACKOFF))

    workers = [threading.Thread(target=work) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert results == [final_path(tmp_path)] * 3
    assert server.count("/a") == 1


# --- argument errors -----------------------------------------------------------------------


def test_fetch_requires_a_pinned_sha256(tmp_path: Path) -> None:
    unpinned = RemoteFile(name=NAME, mirror_path=NAME, urls=(), sha256=None)
    with pytest.raises(ValueError, match=r"pinned sha256 for 'payload.bin'.*fetch_source"):
        fetch(unpinned, tmp_path)


def test_fetch_rejects_an_unknown_mirror_scheme(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Received: 's3://bucket' \(scheme 's3'\)"):
        fetch(remote(), tmp_path, ("s3://bucket",))


def test_fetch_needs_a_source(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"Expected at least one source for 'payload.bin'"):
        fetch(remote(), tmp_path)


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("attempts", 0),
        ("timeout", 0.0),
        ("backoff", -1.0),
        ("max_bytes", 0),
        ("deadline", 0.0),
        ("max_retry_after", -1.0),
    ],
)
def test_fetch_validates_its_arguments(tmp_path: Path, argument: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"Received: {argument}={value}"):
        fetch(remote(), tmp_path, **{argument: value})  # type: ignore[arg-type]


# --- user sources --------------------------------------------------------------------------


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
def test_fetch_source_copies_a_local_file(tmp_path: Path, as_url: bool) -> None:
    source = tmp_path / "mine.xlsx"
    source.write_bytes(PAYLOAD)
    where = source.as_uri() if as_url else str(source)
    path, digest = fetch_source(where, tmp_path / "raw", max_bytes=SOURCE_MAX_BYTES)
    assert digest == PAYLOAD_SHA
    assert path == tmp_path / "raw" / PAYLOAD_SHA / "mine.xlsx"
    assert path.read_bytes() == PAYLOAD
    assert leftovers(tmp_path / "raw") == []


def test_fetch_source_downloads_a_url(server: Script, tmp_path: Path) -> None:
    url = server.route("/files/book%20one.xlsx", serve(PAYLOAD))
    path, digest = fetch_source(url, tmp_path, max_bytes=SOURCE_MAX_BYTES, backoff=FAST_BACKOFF)
    assert (path, digest) == (tmp_path / PAYLOAD_SHA / "book one.xlsx", PAYLOAD_SHA)
    assert path.read_bytes() == PAYLOAD


def test_fetch_source_names_a_missing_local_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.xlsx"
    with pytest.raises(FileNotFoundError, match=r"Received: source='.*nowhere\.xlsx'"):
        fetch_source(str(missing), tmp_path / "raw", max_bytes=SOURCE_MAX_BYTES)


def test_fetch_source_reports_an_http_failure(server: Script, tmp_path: Path) -> None:
    url = server.route("/gone.xlsx", fail(404))
    with pytest.raises(DownloadError, match=r"gone\.xlsx.*HTTP 404"):
        fetch_source(url, tmp_path, max_bytes=SOURCE_MAX_BYTES, backoff=FAST_BACKOFF)
    assert leftovers(tmp_path) == []


def test_fetch_source_refuses_an_oversized_body_while_it_streams(
    server: Script, tmp_path: Path
) -> None:
    # The server never ends the body: only a cap checked as bytes arrive can answer at all.
    url = server.route("/big.xlsx", flood(4 * SOURCE_MAX_BYTES, server.release))
    with pytest.raises(DownloadError, match=rf"exceeds the limit of {SOURCE_MAX_BYTES} bytes"):
        fetch_source(url, tmp_path, max_bytes=SOURCE_MAX_BYTES, backoff=FAST_BACKOFF)
    assert server.count() == 1
    assert leftovers(tmp_path) == []


def test_fetch_source_refuses_an_announced_oversized_body(server: Script, tmp_path: Path) -> None:
    url = server.route("/big.xlsx", serve(PAYLOAD))
    with pytest.raises(DownloadError, match=rf"body of {len(PAYLOAD)} bytes exceeds the limit"):
        fetch_source(url, tmp_path, max_bytes=len(PAYLOAD) - 1)


def test_fetch_source_refuses_an_oversized_local_file(tmp_path: Path) -> None:
    source = tmp_path / "big.xlsx"
    source.write_bytes(PAYLOAD)
    with pytest.raises(DownloadError, match=r"big\.xlsx.*exceeds the limit of 100"):
        fetch_source(str(source), tmp_path / "raw", max_bytes=100)
    assert leftovers(tmp_path / "raw") == []


def test_fetch_source_needs_a_file_name_in_the_url(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"plain file name. Received: ''"):
        fetch_source("http://127.0.0.1:9/", tmp_path, max_bytes=SOURCE_MAX_BYTES)


def test_local_source_names_the_file_of_paths_and_file_urls(tmp_path: Path) -> None:
    target = tmp_path / "book.xlsx"
    assert local_source(str(target)) == target
    assert local_source(target.as_uri()) == target
    assert local_source("https://example.org/book.xlsx") is None
    with pytest.raises(ValueError, match="ftp"):
        local_source("ftp://example.org/book.xlsx")
