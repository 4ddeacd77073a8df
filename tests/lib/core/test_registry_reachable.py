"""A tracking server that is down fails in seconds, not after MLflow's minutes of retries."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from lib.core.errors import ExpectedError
from lib.core.registry import RegistryUnavailableError, check_reachable
from tests.e2e.servers import free_port


@pytest.fixture
def answering_url() -> Iterator[str]:
    """Any HTTP server: even a 404 shows that something listens."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_closed_port_fails_at_once_without_echoing_credentials() -> None:
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError, match=r"Could not reach the MLflow registry") as e:
        check_reachable(f"http://alice:s3cret@127.0.0.1:{free_port()}/?token=t0ken")
    assert time.monotonic() - started < 5
    assert "s3cret" not in str(e.value) and "t0ken" not in str(e.value)
    assert isinstance(e.value, ExpectedError)


def test_a_server_that_answers_passes(answering_url: str) -> None:
    check_reachable(answering_url)


@pytest.mark.parametrize("uri", ["sqlite:////nowhere/mlflow.db", "file:///tmp/mlruns", "x"])
def test_other_stores_are_not_probed(uri: str) -> None:
    check_reachable(uri)
