"""Download tasks: no Prefect retries on top of lib.core.fetch's own, one clean failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import flow

from lib.core.hashing import sha256_file
from lib.core.remote import RemoteFile
from tasks.download import download, ingest_source

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_download_tasks_leave_retrying_to_lib_fetch() -> None:
    # lib.core.fetch retries what HTTP calls transient; a task retry would multiply it.
    assert download.retries == 0 and ingest_source.retries == 0


def test_download_takes_a_pinned_file_from_a_mirror(trainflow_home: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "data.bin").write_bytes(b"pinned bytes")
    remote = RemoteFile(
        name="data.bin", mirror_path="data.bin", urls=(), sha256=sha256_file(mirror / "data.bin")
    )

    @flow
    def get() -> str:
        return download(remote).path

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAINFLOW_MIRROR", str(mirror))
        path = Path(get())
    assert path.read_bytes() == b"pinned bytes"
    assert path.is_relative_to(trainflow_home.resolve() / "raw")


def test_a_wrong_mirror_file_fails_once_without_retry(trainflow_home: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "data.bin").write_bytes(b"not the pinned bytes")
    remote = RemoteFile(name="data.bin", mirror_path="data.bin", urls=(), sha256="0" * 64)

    @flow
    def get() -> None:
        download(remote)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAINFLOW_MIRROR", str(mirror))
        state = get(return_state=True)
    assert state.is_failed()
    assert not (trainflow_home / "raw" / ("0" * 64)).exists()
