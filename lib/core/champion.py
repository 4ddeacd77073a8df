"""The registry's champion as a pyfunc model: what `predict` and any script load."""

from __future__ import annotations

from typing import Any

from lib.core.registry import CHAMPION_ALIAS, champion, load_pyfunc, open_client
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
