"""Provenance stored as one JSON object under a key of a Parquet file's key-value metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lib.core.atomic import atomic_path

METADATA_KEY = b"trainflow"
"""The one key of a Parquet file's key-value metadata that holds trainflow's provenance."""
PARQUET_COMPRESSION = "zstd"
"""How every Parquet file trainflow writes is compressed."""


def parse_json_metadata(
    schema: pa.Schema, path: Path, key: bytes, error: type[Exception]
) -> dict[str, Any]:
    """The JSON object under `key`; `error` (the caller's format error) names what is wrong."""
    raw = (schema.metadata or {}).get(key)
    if raw is None:
        raise error(
            f"{path}: Expected '{key.decode()}' key-value metadata. "
            f"Received: keys={sorted(k.decode() for k in (schema.metadata or {}))}"
        )
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError as decode_error:
        raise error(
            f"{path}: Expected JSON in the '{key.decode()}' metadata. Received: {decode_error}"
        ) from decode_error
    if not isinstance(metadata, dict):
        raise error(
            f"{path}: Expected a JSON object in the '{key.decode()}' metadata. "
            f"Received: {type(metadata).__name__}"
        )
    return metadata


def read_json_metadata(path: Path, key: bytes, error: type[Exception]) -> dict[str, Any]:
    """`parse_json_metadata` of a file, reading only its schema, not its rows."""
    path = Path(path)
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as read_error:
        raise error(f"{path}: Expected a Parquet file. Received: {read_error}") from read_error
    return parse_json_metadata(schema, path, key, error)


def write_frame(frame: Any, target: Path) -> None:
    """Store a pandas frame as Parquet at `target`, whole or not at all (temp-then-rename)."""
    with atomic_path(target) as temporary:
        pq.write_table(
            pa.Table.from_pandas(frame, preserve_index=False),
            temporary,
            compression=PARQUET_COMPRESSION,
        )
