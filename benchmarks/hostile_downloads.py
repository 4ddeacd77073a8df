"""What a hostile or absent server costs a download: time, peak memory and the one-line error.

    .venv/bin/python benchmarks/hostile_downloads.py [--cli] [--drip-deadline 5]

Each case runs in a fresh child process (so its peak RSS is its own) against a server on
127.0.0.1 that the child starts, or against a host that cannot resolve (``.invalid``, RFC
6761), so no traffic leaves the machine. Prints the load average first: on 2 shared cores the
seconds depend on it. With --cli it also times ``trainflow run energy`` with no mirror and no
network (a fresh TRAINFLOW_HOME and PREFECT_HOME): most of that is Python, TensorFlow and
Prefect's temporary API starting, not the download.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from lib.core.fetch import DownloadError, fetch, fetch_source
from lib.core.remote import RemoteFile
from lib.core.table_files import MAX_FILE_BYTES

DRIP_DEADLINE = 5.0  # seconds; the default DOWNLOAD_DEADLINE is 600
DRIP_SECONDS = 1.0  # one byte a second: the slowloris
FLOOD_CHUNK = b"x" * (1 << 16)
FLOOD_CAP_BYTES = 4 * MAX_FILE_BYTES  # the server stops by itself even if nothing cuts it
RETRY_AFTER_SECONDS = 3600
CASE_DEADLINE = 5.0  # the deadline given to cases that must not wait for Retry-After
CLI_TIMEOUT = 300
UNRESOLVABLE = "http://nonexistent.invalid/ENB2012_data.xlsx"
FAKE_SHA = "0" * 64
SIZE = 76_189  # the energy workbook's size: a realistic pinned file

Handler = Callable[[BaseHTTPRequestHandler], None]


def _drip(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(SIZE))
    handler.end_headers()
    for _ in range(SIZE):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(DRIP_SECONDS)


def _flood(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.end_headers()  # no Content-Length: only a cap checked while streaming stops it
    for _ in range(FLOOD_CAP_BYTES // len(FLOOD_CHUNK)):
        handler.wfile.write(FLOOD_CHUNK)


def _busy(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(503)
    handler.send_header("Retry-After", str(RETRY_AFTER_SECONDS))
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def _away(handler: BaseHTTPRequestHandler) -> None:
    port = handler.headers["Host"].rsplit(":", 1)[1]  # the same server, named otherwise
    handler.send_response(302)
    handler.send_header("Location", f"http://localhost:{port}/drip")
    handler.send_header("Content-Length", "0")
    handler.end_headers()


ROUTES: dict[str, Handler] = {"/drip": _drip, "/flood": _flood, "/busy": _busy, "/away": _away}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        with contextlib.suppress(OSError):  # the client hung up: the point of most cases
            ROUTES[self.path](self)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@contextmanager
def _server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _pinned(url: str) -> RemoteFile:
    return RemoteFile(name="ENB2012_data.xlsx", mirror_path="x", urls=(url,), sha256=FAKE_SHA)


def _run_case(case: str, raw: Path, drip_deadline: float) -> str:
    """Run one case in this process; returns the error's message (every case must fail)."""
    try:
        with _server() as base:
            if case == "drip":
                fetch(_pinned(f"{base}/drip"), raw, deadline=drip_deadline)
            elif case == "flood":
                fetch_source(f"{base}/flood", raw, max_bytes=MAX_FILE_BYTES)
            elif case == "retry-after":
                fetch(_pinned(f"{base}/busy"), raw, deadline=CASE_DEADLINE)
            elif case == "redirect":
                fetch(_pinned(f"{base}/away"), raw)
            elif case == "offline":
                fetch(_pinned(UNRESOLVABLE), raw)
            elif case != "baseline":
                raise ValueError(f"Expected one of {', '.join(CASES)}. Received: case={case!r}")
    except DownloadError as error:
        return str(error)
    return "(no download)" if case == "baseline" else "UNEXPECTED: no error"


CASES = {
    "baseline": "imports and an idle server only",
    "drip": f"1 byte/s, pinned, deadline {DRIP_DEADLINE:g} s",
    "flood": "unpinned, endless body, no Content-Length",
    "retry-after": f"503 Retry-After {RETRY_AFTER_SECONDS}, deadline {CASE_DEADLINE:g} s",
    "redirect": "http 127.0.0.1 -> http localhost",
    "offline": "unresolvable host, default bounds",
}


def _child(case: str, drip_deadline: float) -> None:
    with tempfile.TemporaryDirectory() as raw:
        started = time.perf_counter()
        message = _run_case(case, Path(raw), drip_deadline)
        seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"message": message, "seconds": seconds, "peak_mb": peak_mb}))


def _measure(case: str, drip_deadline: float) -> dict[str, object]:
    command = [sys.executable, __file__, "--case", case, "--drip-deadline", str(drip_deadline)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _measure_cli() -> dict[str, object]:
    """`trainflow run energy` offline, as a person would run it; its last stderr line."""
    with tempfile.TemporaryDirectory() as home:
        env = {key: value for key, value in os.environ.items() if key != "TRAINFLOW_MIRROR"}
        env |= {"TRAINFLOW_HOME": f"{home}/home", "PREFECT_HOME": f"{home}/prefect"}
        command = [sys.executable, "-m", "flows.cli", "run", "energy"]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=CLI_TIMEOUT)
        seconds = time.perf_counter() - started
    errors = [line for line in done.stderr.splitlines() if line.startswith("trainflow: error:")]
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "message": errors[-1] if errors else "UNEXPECTED",
        "seconds": seconds,
        "peak_mb": peak_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", action="store_true", help="also time `trainflow run energy`")
    parser.add_argument("--drip-deadline", type=float, default=DRIP_DEADLINE)
    parser.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        _child(args.case, args.drip_deadline)
        return
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("| case | one-line message | seconds | peak MB |")
    print("| --- | --- | ---: | ---: |")
    rows = [(f"{case}: {what}", _measure(case, args.drip_deadline)) for case, what in CASES.items()]
    if args.cli:
        rows.append(("cli: `trainflow run energy`, offline, no mirror", _measure_cli()))
    for label, row in rows:
        message = str(row["message"]).replace("|", "\\|")
        print(f"| {label} | {message} | {row['seconds']:.2f} | {row['peak_mb']:.0f} |")


if __name__ == "__main__":
    main()
