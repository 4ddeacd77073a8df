"""The commands that run servers as children: `trainflow ui` and `trainflow serve-model`.

Each server runs in its own session (process group), so a terminal's Ctrl-C reaches it once,
through `_stop`; SIGTERM to trainflow stops the children too, and either server dying ends
the command with its exit code. Heavy imports stay inside the commands.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from lib.core.settings import UI_HOST

CHILD_POLL_SECONDS = 0.5
CHILD_STOP_SECONDS = 15.0
PING_TIMEOUT_SECONDS = 2.0


def ui_commands(
    tracking_uri: str, prefect_port: int, mlflow_port: int
) -> dict[str, tuple[str, list[str]]]:
    """Name -> (address, command) of the two servers, run with this interpreter (this venv)."""
    return {
        "Prefect": (
            f"http://{UI_HOST}:{prefect_port}",
            # --no-prompt: a terminal would otherwise be asked to edit the Prefect profile.
            [sys.executable, "-m", "prefect", "--no-prompt", "server", "start"]
            + ["--host", UI_HOST, "--port", str(prefect_port)],
        ),
        "MLflow": (
            f"http://{UI_HOST}:{mlflow_port}",
            [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri]
            + ["--host", UI_HOST, "--port", str(mlflow_port), "--workers", "1"],
        ),
    }


def mlflow_links(ui_url: str) -> dict[str, str]:
    """What to open in the MLflow UI at `ui_url`: each pipeline's runs, the registered models.

    Opens the registry first (creating it and the pipelines' experiments if need be), so the
    links work before any run, and so the MLflow server never creates a store of its own.

    Raises:
        RegistryError: the registry cannot be opened.
    """
    from lib.core.registry import experiment_ids, experiment_runs_url, registered_models_url
    from lib.core.settings import load_settings
    from lib.energy.spec import SPEC as ENERGY
    from lib.siamese.spec import SPEC as SIAMESE

    settings = load_settings()
    ids = experiment_ids(
        settings.tracking_uri, [ENERGY.pipeline, SIAMESE.pipeline], settings.artifact_root
    )
    links = {f"{name} runs": experiment_runs_url(ui_url, id_) for name, id_ in ids.items()}
    return {**links, "registered models": registered_models_url(ui_url)}


def _stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM each child's own process group (servers fork workers), SIGKILL if it lingers."""
    for child in children.values():
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout=CHILD_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def _first_exited(children: dict[str, subprocess.Popen[bytes]]) -> str:
    while True:
        for name, child in children.items():
            if child.poll() is not None:
                return name
        time.sleep(CHILD_POLL_SECONDS)


def ui(args: argparse.Namespace) -> int:
    """Start the Prefect and MLflow UIs and print where to look in them.

    Ctrl-C stops both servers, and so does either one dying.
    """
    from lib.core.settings import load_settings

    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)  # MLflow's SQLite file goes here
    servers = ui_commands(settings.tracking_uri, args.prefect_port, args.mlflow_port)
    links = mlflow_links(servers["MLflow"][0])
    # SIGTERM stops the children too; their own sessions keep a terminal's Ctrl-C from
    # reaching them twice (once from the terminal, once from `_stop`).
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, (address, command) in servers.items():
            children[name] = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, start_new_session=True
            )
            print(f"{name} UI: {address}", flush=True)
        for what, link in links.items():  # under the MLflow line, which comes last
            print(f"  {what}: {link}", flush=True)
        print(
            f"Runs reach this Prefect UI when started with PREFECT_API_URL={servers['Prefect'][0]}"
            "/api. Ctrl-C stops both servers.",
            flush=True,
        )
        exited = _first_exited(children)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(children)
        signal.signal(signal.SIGTERM, previous)
    code = children[exited].returncode
    print(f"trainflow: error: the {exited} server exited with code {code}", file=sys.stderr)
    return 1


def _served_model(pipeline: str) -> tuple[str, str]:
    """The registered name of `pipeline`'s model and curl's `-d` argument for the hint."""
    import json

    if pipeline == "energy":
        from lib.energy.constants import EXAMPLE_BUILDING
        from lib.energy.constants import MODEL_NAME as ENERGY

        return ENERGY, f"'{json.dumps({'dataframe_records': [EXAMPLE_BUILDING]})}'"
    from lib.siamese.constants import MODEL_NAME as SIAMESE

    return SIAMESE, "@pair.json  (a pair of 784-pixel images: README, Serving)"


def serve_model(args: argparse.Namespace) -> int:
    """Serve the champion (or `--version`) over HTTP until Ctrl-C or SIGTERM; exit 0 then."""
    import tempfile

    from lib.core.model_server import (
        check_port_free,
        example_curl,
        resolve_version,
        serve_command,
    )
    from lib.core.registry import download_code_model
    from lib.core.settings import load_settings

    settings = load_settings()
    name, body = _served_model(args.pipeline)
    check_port_free(args.host, args.port)
    served = resolve_version(settings.tracking_uri, name, args.version)
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.scratch_dir, prefix="serve-") as folder:
        model = download_code_model(served.uri, Path(folder) / "model")
        command, env = serve_command(model, args.host, args.port)
        address = f"http://{args.host}:{args.port}"
        print(f"Serving {name} v{served.version} at {address} (POST /invocations, GET /ping)")
        print(f"Try: {example_curl(args.host, args.port, body)}", flush=True)
        return _run_server(command, env, f"{address}/ping")


def _copy_log(stream: IO[bytes]) -> None:
    """Pass the server's log on to our stderr, without TensorFlow's start-up banner.

    The server imports TensorFlow in its own process, where `quiet_tensorflow_import` is not
    installed; its native banner lines are dropped here, line by line.
    """
    from lib.core.quiet import is_banner

    for line in iter(stream.readline, b""):
        if not is_banner(line):
            sys.stderr.buffer.write(line)
            sys.stderr.buffer.flush()


def _run_server(command: list[str], env: dict[str, str], ping_url: str) -> int:
    """Run the scoring server in its own session; say when it answers; stop it on Ctrl-C."""
    import httpx

    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    child = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert child.stderr is not None  # piped above
    threading.Thread(target=_copy_log, args=(child.stderr,), daemon=True).start()
    children = {"scoring": child}
    ready = False
    try:
        while child.poll() is None:
            if not ready:
                with contextlib.suppress(httpx.HTTPError):
                    ready = httpx.get(ping_url, timeout=PING_TIMEOUT_SECONDS).status_code == 200
                if ready:
                    print("Ready. Ctrl-C stops the server.", flush=True)
            time.sleep(CHILD_POLL_SECONDS)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(children)
        signal.signal(signal.SIGTERM, previous)
    code = child.returncode
    print(f"trainflow: error: the scoring server exited with code {code}", file=sys.stderr)
    return 1
