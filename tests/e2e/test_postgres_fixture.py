"""The PostgreSQL fixture itself: found where Debian puts it, started as the right account."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest

from tests.fixtures.postgres import DEBIAN_BINARIES, Postgres, find_binary


def test_initdb_is_found_off_path_in_debians_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = sorted(Path("/").glob(f"{DEBIAN_BINARIES.lstrip('/')}/initdb"))
    if not installed:
        pytest.skip(f"no PostgreSQL under {DEBIAN_BINARIES}")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # Debian's package links nothing here

    assert find_binary("initdb") == installed[-1]
    assert find_binary("no-such-postgres-tool") is None


def test_a_database_made_on_the_session_server_takes_connections(postgres: Postgres) -> None:
    name = postgres.create_database("probe")

    connection = psycopg2.connect(postgres.url(name))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database(), current_setting('fsync')")
            assert cursor.fetchone() == (name, "off")
    finally:
        connection.close()
    assert postgres.url(name, "postgresql+asyncpg").startswith("postgresql+asyncpg://")
