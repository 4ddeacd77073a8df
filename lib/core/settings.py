"""One settings object, read from the environment when asked for (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_VARIABLE = "TRAINFLOW_HOME"
MIRROR_VARIABLE = "TRAINFLOW_MIRROR"
TRACKING_VARIABLE = "MLFLOW_TRACKING_URI"
SOURCE_ROOTS_VARIABLE = "TRAINFLOW_SOURCE_ROOTS"
VERBOSE_VARIABLE = "TRAINFLOW_VERBOSE"
STORE_VARIABLE = "TRAINFLOW_STORE"
DEFAULT_HOME = Path("~/.trainflow")
# Where `trainflow ui` serves the Prefect and MLflow UIs by default.
UI_HOST = "127.0.0.1"
PREFECT_UI_PORT = 4200
MLFLOW_UI_PORT = 5000
MODEL_SERVER_PORT = 5001
"""Default port of `trainflow serve-model` (MLflow's own default, 5000, is the UI's)."""


@dataclass(frozen=True)
class Settings:
    """Where trainflow keeps its state and where it looks for data.

    Attributes:
        home: the one state directory: raw downloads, Parquet, models, registry DB.
        tracking_uri: MLflow tracking/registry URI; a SQLite file under `home` by default.
        mirrors: directories or base URLs tried before the published URLs.
        source_roots: the only directories whose files a run started through the Prefect API
            (a deployment) may read as its `source`; none by default.
        verbose: show tracebacks of expected failures too (`trainflow -v`).
        store: the artifact store (`lib.core.store`): a folder, by default ``<home>/store``,
            or ``s3://bucket/prefix``. Machines that share it share files and cache hits.
    """

    home: Path
    tracking_uri: str
    mirrors: tuple[str, ...]
    source_roots: tuple[Path, ...] = ()
    verbose: bool = False
    store: str = ""

    @property
    def raw_dir(self) -> Path:
        return self.home / "raw"

    @property
    def artifact_root(self) -> Path:
        """Where MLflow stores the runs' artifacts and the registered models' files."""
        return self.home / "mlartifacts"

    @property
    def cache_dir(self) -> Path:
        """This machine's copies of objects fetched from the store, by hash."""
        return self.home / "cache"

    @property
    def scratch_dir(self) -> Path:
        """Throwaway folders (a registered model downloaded to be loaded).

        `lib.core.hygiene` removes what a killed process leaves here.
        """
        return self.home / "tmp"

    @property
    def tracking_server(self) -> bool:
        """Whether the registry is an MLflow tracking server (http/https), not a local store."""
        return self.tracking_uri.startswith(("http://", "https://"))

    @property
    def mlflow_ui_url(self) -> str:
        """Where a person opens the registry: the tracking server, else `trainflow ui`'s MLflow."""
        if self.tracking_server:
            return self.tracking_uri.rstrip("/")
        return f"http://{UI_HOST}:{MLFLOW_UI_PORT}"

    @property
    def prefect_ui_url(self) -> str:
        """Where `trainflow ui` shows the runs of Prefect's temporary API (same `PREFECT_HOME`).

        Only the fallback: with `PREFECT_API_URL` (or `PREFECT_UI_URL`) set, Prefect's own
        settings name that server's UI and take precedence.
        """
        return f"http://{UI_HOST}:{PREFECT_UI_PORT}"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read settings from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    home = Path(env.get(HOME_VARIABLE) or DEFAULT_HOME).expanduser().resolve()
    tracking_uri = env.get(TRACKING_VARIABLE) or f"sqlite:///{home / 'mlflow.db'}"
    mirrors = tuple(
        part.strip() for part in env.get(MIRROR_VARIABLE, "").split(",") if part.strip()
    )
    source_roots = tuple(
        Path(part.strip()).expanduser().resolve()
        for part in env.get(SOURCE_ROOTS_VARIABLE, "").split(os.pathsep)
        if part.strip()
    )
    verbose = env.get(VERBOSE_VARIABLE, "").strip() not in ("", "0")
    store = env.get(STORE_VARIABLE, "").strip() or str(home / "store")
    return Settings(
        home=home,
        tracking_uri=tracking_uri,
        mirrors=mirrors,
        source_roots=source_roots,
        verbose=verbose,
        store=store,
    )
