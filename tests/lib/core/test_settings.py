"""Settings: defaults, environment overrides and the mirror list, read only when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.core.settings import (
    DEFAULT_HOME,
    HOME_VARIABLE,
    MIRROR_VARIABLE,
    STORE_VARIABLE,
    TRACKING_VARIABLE,
    load_settings,
)


def test_defaults_put_everything_under_the_default_home() -> None:
    settings = load_settings(environ={})
    home = DEFAULT_HOME.expanduser().resolve()
    assert settings.home == home
    assert settings.home.is_absolute()
    assert settings.tracking_uri == f"sqlite:///{home / 'mlflow.db'}"
    assert settings.mirrors == ()


def test_home_override_is_absolute_and_holds_every_state_directory(tmp_path: Path) -> None:
    settings = load_settings(environ={HOME_VARIABLE: str(tmp_path / "state" / ".." / "home")})
    home = (tmp_path / "home").resolve()
    assert settings.home == home
    assert settings.raw_dir == home / "raw"


def test_sqlite_registry_lives_under_the_home(tmp_path: Path) -> None:
    settings = load_settings(environ={HOME_VARIABLE: str(tmp_path)})
    assert settings.tracking_uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    # Four slashes in total: sqlite:/// plus the absolute path's own leading slash.
    assert settings.tracking_uri.startswith("sqlite:////")


def test_home_expands_the_user_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings(environ={HOME_VARIABLE: "~/elsewhere"})
    assert settings.home == (tmp_path / "elsewhere").resolve()


def test_empty_home_falls_back_to_the_default() -> None:
    assert load_settings(environ={HOME_VARIABLE: ""}).home == DEFAULT_HOME.expanduser().resolve()


def test_tracking_uri_override_wins_over_the_home(tmp_path: Path) -> None:
    uri = "http://127.0.0.1:5000"
    settings = load_settings(environ={HOME_VARIABLE: str(tmp_path), TRACKING_VARIABLE: uri})
    assert settings.tracking_uri == uri
    assert settings.home == tmp_path.resolve()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ()),
        ("/srv/mirror", ("/srv/mirror",)),
        (" /srv/a , http://127.0.0.1:8000/data ,, ", ("/srv/a", "http://127.0.0.1:8000/data")),
        (",,", ()),
    ],
)
def test_mirror_list_is_comma_separated_trimmed_and_ordered(
    raw: str, expected: tuple[str, ...]
) -> None:
    assert load_settings(environ={MIRROR_VARIABLE: raw}).mirrors == expected


def test_process_environment_is_read_when_asked_not_at_import(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(HOME_VARIABLE, str(tmp_path / "first"))
    assert load_settings().home == (tmp_path / "first").resolve()
    monkeypatch.setenv(HOME_VARIABLE, str(tmp_path / "second"))
    monkeypatch.setenv(MIRROR_VARIABLE, "/m")
    settings = load_settings()
    assert settings.home == (tmp_path / "second").resolve()
    assert settings.mirrors == ("/m",)


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(environ={HOME_VARIABLE: str(tmp_path)})
    with pytest.raises(AttributeError, match="home"):
        settings.home = tmp_path / "other"  # type: ignore[misc]


def test_mlflow_ui_is_the_tracking_server_or_trainflow_ui(tmp_path: Path) -> None:
    local = load_settings({HOME_VARIABLE: str(tmp_path)})
    team = load_settings({TRACKING_VARIABLE: "https://mlflow.example.org/"})
    assert local.mlflow_ui_url == "http://127.0.0.1:5000"
    assert team.mlflow_ui_url == "https://mlflow.example.org"


def test_the_store_is_a_folder_in_the_home_unless_trainflow_store_names_one(
    tmp_path: Path,
) -> None:
    home = {HOME_VARIABLE: str(tmp_path)}
    assert load_settings(environ=home).store == str(tmp_path.resolve() / "store")
    assert load_settings(environ=home).cache_dir == tmp_path.resolve() / "cache"
    shared = load_settings(environ={**home, STORE_VARIABLE: " s3://bucket/team "})
    assert shared.store == "s3://bucket/team"
