"""HTTP serving throughput and `trainflow predict` start-up, before and after this branch.

    .venv/bin/python benchmarks/serving.py [--data ../shared/data] [--before 9ed458b]

What it does, all as child processes against fresh state directories under one temp folder:

1. `predict` start-up: the code of commit `--before` (extracted with `git archive`) and this
   checkout each train a small energy champion on the real workbook (`trainflow run energy
   --epochs 3`), then run `trainflow predict energy` on 5 buildings `--repeats` times;
   printed: median wall seconds and median CPU seconds (user + system) per call.
2. Energy over HTTP: `trainflow serve-model energy`; rows/s for requests of 1 row (one
   after another on one connection) and of 10,000 rows (real workbook rows resampled).
3. Siamese over HTTP: a siamese version with the default recipe's network (untrained:
   throughput does not depend on the weights) registered with this checkout's signature and
   served with `serve-model siamese --version 1`; pairs/s for requests of 1 and 1,000 pairs
   of Fashion-MNIST test images.

The load average is printed first; the machine is shared, so read figures beside it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lib.energy.constants import FEATURES  # noqa: E402
from lib.siamese.constants import LEFT, RIGHT  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
HOST = "127.0.0.1"
SERVER_START_SECONDS = 300
ENERGY_EPOCHS = "3"


def _env(code: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINFLOW_", "MLFLOW_"))}
    env.update(
        TRAINFLOW_HOME=str(home / "home"),
        PREFECT_HOME=str(home / "prefect"),
        PYTHONPATH=str(code),
        TF_NUM_INTRAOP_THREADS="1",
    )
    return env


def _cli(code: Path, home: Path, *args: str) -> tuple[float, float]:
    """Run `trainflow ARGS` with `code` first on sys.path; wall and CPU seconds it took."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=code,
        env=_env(code, home),
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"trainflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _extract(commit: str, folder: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def startup(before: str, data: Path, root: Path, repeats: int) -> None:
    buildings = pd.read_excel(data / "ENB2012_data.xlsx", engine="openpyxl").iloc[:5, :10]
    inputs = root / "buildings.csv"
    buildings.to_csv(inputs, index=False)
    codes = {f"before ({before})": _extract(before, root / "before"), "after (this checkout)": REPO}
    print(
        f"{'trainflow predict energy, 5 rows':<36} {'wall s':>8} {'CPU s':>8}   (median of "
        f"{repeats})",
        flush=True,
    )
    for label, code in codes.items():
        home = root / f"state-{label.split()[0]}"
        home.mkdir()
        _cli(
            code,
            home,
            "run",
            "energy",
            "--epochs",
            ENERGY_EPOCHS,
            "--source",
            str(data / "ENB2012_data.xlsx"),
        )
        runs = [_cli(code, home, "predict", "energy", str(inputs)) for _ in range(repeats)]
        wall = statistics.median(run[0] for run in runs)
        cpu = statistics.median(run[1] for run in runs)
        print(f"{label:<36} {wall:>8.2f} {cpu:>8.2f}", flush=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(home: Path, *args: str) -> Iterator[str]:
    """`trainflow serve-model ARGS` on a free port until it answers /ping; yields its URL."""
    port = _free_port()
    log = (home / f"serve-{args[0]}.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve-model", *args, "--port", str(port)],
        cwd=REPO, env=_env(REPO, home), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not _answers(f"{url}/ping"):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve-model {args} did not start; see {log.name}")
            time.sleep(0.5)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _rate(url: str, bodies: list[str], rows: int) -> float:
    """Rows (or pairs) per second over `bodies`, posted one after another on one connection."""
    headers = {"Content-Type": "application/json"}
    with httpx.Client(timeout=600) as client:
        client.post(f"{url}/invocations", content=bodies[0], headers=headers)  # warm-up
        start = time.perf_counter()
        for body in bodies:
            response = client.post(f"{url}/invocations", content=body, headers=headers)
            response.raise_for_status()
        return rows * len(bodies) / (time.perf_counter() - start)


def _split(frame: pd.DataFrame) -> str:
    return json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))})


def energy_throughput(data: Path, home: Path, rng: np.random.Generator) -> list[tuple[str, float]]:
    workbook = pd.read_excel(data / "ENB2012_data.xlsx", engine="openpyxl")
    workbook = workbook[list(FEATURES)].astype("float64")
    big = workbook.sample(10_000, replace=True, random_state=rng)
    singles = [_split(workbook.iloc[[i]]) for i in range(200)]
    with served(home, "energy") as url:
        return [
            ("energy, 1 row per request", _rate(url, singles, 1)),
            ("energy, 10,000 rows per request", _rate(url, [_split(big)] * 5, 10_000)),
        ]


def _register_siamese(home: Path) -> None:
    """An untrained network of the default recipe, registered as this checkout registers."""
    os.environ.update(_env(REPO, home))
    import mlflow

    from lib.core.registry import KERAS_ARTIFACT, connect
    from lib.core.settings import load_settings
    from lib.siamese.model import build_siamese_model
    from lib.siamese.recipes import PRESETS
    from lib.siamese.serving import serving_signature
    from lib.siamese.spec import SPEC

    settings = load_settings()
    connect(settings.tracking_uri, SPEC.pipeline, settings.home / "mlartifacts")
    keras_path = home / "siamese.keras"
    build_siamese_model(PRESETS["default"]).save(keras_path)
    signature, example = serving_signature()
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(SPEC.model_code()),
            artifacts={KERAS_ARTIFACT: str(keras_path)}, model_config={"threshold": 0.5},
            signature=signature, input_example=example, pip_requirements=[],
        )  # fmt: skip
    mlflow.register_model(info.model_uri, SPEC.name)


def siamese_throughput(data: Path, home: Path, rng: np.random.Generator) -> list[tuple[str, float]]:
    from lib.siamese.idx import read_images

    _register_siamese(home)
    images = read_images(data / "fashion-mnist" / "t10k-images-idx3-ubyte.gz")
    flat = images.reshape(len(images), -1).astype(int)

    def pairs(n: int) -> str:
        left, right = rng.integers(len(flat), size=(2, n))
        rows = [[flat[a].tolist(), flat[b].tolist()] for a, b in zip(left, right, strict=True)]
        return json.dumps({"dataframe_split": {"columns": [LEFT, RIGHT], "data": rows}})

    with served(home, "siamese", "--version", "1") as url:
        return [
            ("siamese, 1 pair per request", _rate(url, [pairs(1) for _ in range(100)], 1)),
            ("siamese, 1,000 pairs per request", _rate(url, [pairs(1000) for _ in range(5)], 1000)),
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--before", default="9ed458b", help="commit to compare start-up with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--http-only", action="store_true", help="skip the start-up comparison (two trainings)"
    )
    args = parser.parse_args()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average (1, 5, 15 min) at start: {load} on {os.cpu_count()} CPUs\n", flush=True)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="trainflow-serving-") as folder:
        root = Path(folder)
        after = root / "state-after"
        if args.http_only:
            after.mkdir()
            _cli(REPO, after, "run", "energy", "--epochs", ENERGY_EPOCHS, "--source",
                 str(args.data / "ENB2012_data.xlsx"))  # fmt: skip
        else:
            startup(args.before, args.data, root, args.repeats)
        rates = energy_throughput(args.data, after, rng)
        siamese_home = root / "siamese"
        siamese_home.mkdir()
        rates += siamese_throughput(args.data, siamese_home, rng)
    print(f"\n{'over HTTP (serve-model, 1 worker)':<36} {'per second':>12}")
    for label, rate in rates:
        print(f"{label:<36} {rate:>12,.0f}", flush=True)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\nload average (1, 5, 15 min) at end: {load}")


if __name__ == "__main__":
    main()
