"""The registry's champion as a pyfunc model (what `predict` loads), or just its reference."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lib.core.registry import (
    CHAMPION_ALIAS,
    SQLITE_PREFIX,
    champion,
    download_reference,
    load_pyfunc,
    open_client,
)
from lib.core.settings import load_settings


def load_champion(name: str) -> Any:
    """The champion of `name` as an MLflow pyfunc model, with a clear error if there is none.

    Raises:
        LookupError: the registry has no champion of `name`.
        RegistryError: the registry did not answer (never reported as "no champion").
        ValueError: the champion holds a pickled wrapper (registered before models from
            code); it is refused, not unpickled.
    """
    settings = load_settings()
    client = open_client(settings.tracking_uri)
    version = champion(client, name)
    if version is None:
        raise LookupError(
            f"no '{CHAMPION_ALIAS}' version of model '{name}' in the registry at "
            f"{settings.tracking_uri}; run `trainflow run` first"
        )
    return load_pyfunc(f"models:/{name}/{version.version}", scratch=settings.scratch_dir)


@contextlib.contextmanager
def champion_reference(name: str) -> Iterator[tuple[str, Path]]:
    """The champion's version and its reference file (what it learned from), while in use.

    Only that file is downloaded, never the network, so a drift check starts no TensorFlow;
    it lives in a scratch folder removed on exit. A local registry that does not exist yet
    is not created: a check writes nothing.

    Raises:
        LookupError: the registry has no champion of `name`, or the champion carries no
            reference (registered before versions carried one).
        RegistryError: the registry did not answer (never reported as "no champion").
    """
    settings = load_settings()
    # A local registry that was never created has no champion; opening it would create it.
    database = settings.tracking_uri.removeprefix(SQLITE_PREFIX)
    never_created = database != settings.tracking_uri and not Path(database).exists()
    version = None if never_created else champion(open_client(settings.tracking_uri), name)
    if version is None:
        raise LookupError(
            f"no '{CHAMPION_ALIAS}' version of model '{name}' in the registry at "
            f"{settings.tracking_uri} to compare with; run `trainflow run` first"
        )
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.scratch_dir) as folder:
        reference = download_reference(f"models:/{name}/{version.version}", Path(folder))
        if reference is None:
            raise LookupError(
                f"the champion of '{name}' (version {version.version}) carries no reference "
                "data (registered before versions did); retrain with `trainflow run` first"
            )
        yield str(version.version), reference
