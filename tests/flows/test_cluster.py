"""What a sweep's Dask workers take from the flow's environment (`flows.cluster`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flows.cluster import worker_environment


def test_with_a_folder_store_workers_share_the_flows_home_and_store_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRAINFLOW_HOME", "home")
    monkeypatch.setenv("TRAINFLOW_STORE", "shared/store")
    monkeypatch.setenv("AWS_PROFILE", "team")

    environ = worker_environment()

    assert environ["TRAINFLOW_HOME"] == str(tmp_path.resolve() / "home")
    assert environ["TRAINFLOW_STORE"] == str(tmp_path.resolve() / "shared" / "store")
    assert environ["AWS_PROFILE"] == "team"


def test_with_an_s3_store_workers_keep_their_own_home_and_get_the_aws_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in [key for key in os.environ if key.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("TRAINFLOW_HOME", "/flow/home")
    monkeypatch.setenv("TRAINFLOW_STORE", "s3://team/trainflow")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3.internal:8333")
    monkeypatch.setenv("PATH_TO_NOWHERE", "not shared")

    environ = worker_environment()

    assert "TRAINFLOW_HOME" not in environ and "PATH_TO_NOWHERE" not in environ
    assert environ["TRAINFLOW_STORE"] == "s3://team/trainflow"
    assert {key: environ[key] for key in environ if key.startswith("AWS_")} == {
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_ENDPOINT_URL_S3": "http://s3.internal:8333",
    }
