"""The registry's champion as a pyfunc model: what `predict` and any script load."""

from __future__ import annotations

from typing import Any

from lib.core.registry import CHAMPION_ALIAS, load_pyfunc
from lib.core.settings import load_settings


def load_champion(name: str) -> Any:
    """The champion of `name` as an MLflow pyfunc model, with a clear error if there is none.

    Raises:
        LookupError: the registry has no champion of `name`.
        ValueError: the champion holds a pickled wrapper (registered before models from
            code); it is refused, not unpickled.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = load_settings().tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        return load_pyfunc(f"models:/{name}@{CHAMPION_ALIAS}")
    except MlflowException as error:
        raise LookupError(
            f"no '{CHAMPION_ALIAS}' version of model '{name}' in the registry at {uri}; "
            f"run `trainflow run` first ({error.message.splitlines()[0]})"
        ) from error
