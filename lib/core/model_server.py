"""What `trainflow serve-model` runs: MLflow's scoring server for one checked model version.

The version is downloaded and checked to be models-from-code (as `load_pyfunc` checks)
before anything of it runs, and that same folder is what the server loads. The server is
`mlflow models serve --env-manager local` run by this interpreter; MLflow starts it as
``bash -c "exec uvicorn ..."``, so this venv's `bin` goes first on its PATH: without it a
venv that is not activated fails with "uvicorn: not found".
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from lib.core.errors import ExpectedError

PING_PATH = "/ping"
INVOCATIONS_PATH = "/invocations"


class PortTakenError(ExpectedError):
    """The address the server should listen on is in use."""


@dataclass(frozen=True)
class ServedVersion:
    """The registered version to serve: its name, number and `models:/` URI."""

    name: str
    version: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def resolve_version(tracking_uri: str, name: str, version: int | None) -> ServedVersion:
    """The champion of `name`, or its `version`, as found in the registry.

    Raises:
        LookupError: no champion, or no such version.
        RegistryError: the registry did not answer.
    """
    from lib.core.registry import (
        CHAMPION_ALIAS,
        REGISTRY_FAILURES,
        RESOURCE_DOES_NOT_EXIST,
        champion,
        open_client,
    )

    client = open_client(tracking_uri)
    if version is None:
        found = champion(client, name)
        if found is None:
            raise LookupError(
                f"no '{CHAMPION_ALIAS}' version of model '{name}' in the registry at "
                f"{tracking_uri}; run `trainflow run` first"
            )
        return ServedVersion(name, str(found.version))
    try:
        client.get_model_version(name, str(version))
    except REGISTRY_FAILURES as error:
        if getattr(error, "error_code", None) == RESOURCE_DOES_NOT_EXIST:
            raise LookupError(
                f"no version {version} of model '{name}' in the registry at {tracking_uri}"
            ) from None
        raise
    return ServedVersion(name, str(version))


def check_port_free(host: str, port: int) -> None:
    """Fail in one line now, rather than after the model loaded, when `host:port` is taken.

    Raises:
        PortTakenError: something listens there already.
        ExpectedError: the address cannot be bound at all (unknown host, not this machine's).
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortTakenError(
                f"port {port} on {host} is taken; pick another with --port"
            ) from None
        raise ExpectedError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None


def serve_command(model_folder: Path, host: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The command and environment of MLflow's scoring server for a downloaded model.

    `model_folder` also becomes the child's TMPDIR: MLflow copies the model once more into a
    temporary folder before serving, and that copy is removed with the folder.
    """
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_folder)]
    command += ["--env-manager", "local", "--host", host, "--port", str(port), "--workers", "1"]
    venv_bin = os.path.dirname(sys.executable)  # the venv's bin: not resolved past a symlink
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "")]).rstrip(os.pathsep)
    env["TMPDIR"] = str(model_folder.parent)
    return command, env


def example_curl(host: str, port: int, data: str) -> str:
    """A one-line request to the server's `/invocations`; `data` is curl's `-d` argument."""
    return (
        f"curl -s http://{host}:{port}{INVOCATIONS_PATH} -H 'Content-Type: application/json' "
        f"-d {data}"
    )
