"""Test-session isolation: state, Prefect and MLflow all live in one temporary directory.

The environment is set here, at import of the root conftest, because Prefect reads
PREFECT_HOME when it is first imported and would otherwise share cached results between
test sessions (DESIGN.md, decision 8).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from xdist.remote import Producer
    from xdist.scheduler.protocol import Scheduling

    from tests.fixtures.seaweedfs import S3Server

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="trainflow-tests-"))
os.environ["PREFECT_HOME"] = str(_SESSION_DIR / "prefect")
os.environ["TRAINFLOW_HOME"] = str(_SESSION_DIR / "home")
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("TRAINFLOW_MIRROR", None)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MPLBACKEND", "Agg")

# Prefect configures logging on first import with dictConfig, which closes every handler that
# exists by then. Were TensorFlow imported first (a lib-only test run), absl's handler would be
# holding pytest's capture file as its stream and close it, and the next test fails with "I/O
# operation on closed file". Configured here, before any test imports TensorFlow, it never is.
import prefect.main  # noqa: E402, F401

# Session-wide servers that some tests start on demand (fixtures `postgres`, ...).
pytest_plugins = ["tests.fixtures.postgres"]

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> Scheduling | None:
    """`--dist loadgroup`: a module's tests that share a module fixture stay on one worker
    (tests.fixtures.scheduling says why xdist's own loadgroup cannot here)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from tests.fixtures.scheduling import ModuleFixtureScheduling

    return ModuleFixtureScheduling(config, log)


@pytest.fixture
def trainflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh TRAINFLOW_HOME (and so a fresh registry) for one test."""
    home = tmp_path / "home"
    monkeypatch.setenv("TRAINFLOW_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("TRAINFLOW_MIRROR", raising=False)
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets; tests that need them skip where this checkout has none beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (a checkout beside ../shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A throwaway Prefect API (its own SQLite database) for every flow and task test."""
    from prefect.testing.utilities import prefect_test_harness

    from tasks.result_storage import prepare_store

    with prefect_test_harness(server_startup_timeout=120):
        prepare_store()  # what each pipeline flow does first
        yield


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 API (SeaweedFS on 127.0.0.1) for the session; each test takes its own prefix."""
    from tests.fixtures.seaweedfs import seaweedfs

    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server
