"""Persisted task results as JSON, and reading a stored one without running anything from it.

Every task with `persist_result=True` sets `result_serializer=RESULT_SERIALIZER`: its
descriptor is stored as JSON (Prefect's default would pickle it). That alone does not stop a
tampered record from running code, because Prefect decodes a stored record with the
serializer the *record* names: one that names "pickle" is unpickled whatever the task says,
and the JSON decoder imports whatever module a `"__class__"` key names. So a record is read
here, with the standard library's `json` only, and accepted only as exactly what
`RESULT_SERIALIZER` writes for the task's own return type (`tasks.caching` does this before
Prefect touches a cache entry).
"""

from __future__ import annotations

import importlib
import json
import typing
from collections.abc import Callable
from typing import Any

from prefect.serializers import JSONSerializer
from pydantic import BaseModel, ValidationError

RESULT_SERIALIZER = "json"
"""The `result_serializer` of every persisted task."""
TRUSTED_SERIALIZER: dict[str, Any] = JSONSerializer().model_dump(mode="json")
"""The serializer settings a record must name, field for field (no other decoder or library)."""
_HOOK_KEYS = frozenset({"__class__", "__exc_type__"})  # what Prefect's JSON decoder acts on


class UntrustedResult(ValueError):
    """A stored result record that is not what trainflow's JSON serializer writes."""


def result_type(fn: Callable[..., Any]) -> type[BaseModel]:
    """The descriptor type a task function returns, from its annotation.

    The annotation is resolved in the namespace of the module that defines `fn`: a task sent
    to a Dask worker arrives as a copy of its function (cloudpickle copies a function that
    its module holds under another name, and a task decorator does just that) whose globals
    are only the names its code uses, not those of its annotations.

    Raises:
        TypeError: the return annotation is not a pydantic model (a descriptor).
    """
    module = importlib.import_module(fn.__module__)
    returned = typing.get_type_hints(fn, globalns=vars(module)).get("return")
    if not (isinstance(returned, type) and issubclass(returned, BaseModel)):
        raise TypeError(
            f"Expected a persisted task to return a pydantic descriptor. "
            f"Received: {fn.__qualname__} -> {returned!r}"
        )
    return returned


def read_result(content: bytes, expected: type[BaseModel]) -> BaseModel | None:
    """The `expected` descriptor in a stored result record, or None for a null result.

    Raises:
        UntrustedResult: the record is not JSON written by `RESULT_SERIALIZER`, names another
            serializer or class, or its data does not validate as `expected`.
    """
    try:
        record = json.loads(content)
        serializer = record["metadata"]["serializer"]
        payload = json.loads(record["result"])
    except (ValueError, TypeError, KeyError) as error:  # UnicodeDecodeError is a ValueError
        raise UntrustedResult(f"not a JSON result record ({type(error).__name__})") from None
    if serializer != TRUSTED_SERIALIZER:
        raise UntrustedResult(f"written with another serializer: {serializer!r}")
    if payload is None:
        return None
    name = f"{expected.__module__}.{expected.__qualname__}"
    if not (isinstance(payload, dict) and payload.keys() == {"__class__", "data"}):
        raise UntrustedResult(f"Expected a {name} record. Received: {str(payload)[:80]}")
    if payload["__class__"] != name:
        raise UntrustedResult(f"Expected a {name}. Received: {payload['__class__']!r}")
    if _names_a_type(payload["data"]):
        raise UntrustedResult(f"a {name} whose data names a type to import")
    try:
        return expected.model_validate(payload["data"])
    except ValidationError as error:
        raise UntrustedResult(f"not a valid {name}: {error.error_count()} errors") from None


def _names_a_type(value: Any) -> bool:
    """Whether a nested dict holds a key Prefect's JSON decoder would import a type from."""
    if isinstance(value, dict):
        return bool(_HOOK_KEYS & value.keys()) or any(map(_names_a_type, value.values()))
    if isinstance(value, list):
        return any(map(_names_a_type, value))
    return False
