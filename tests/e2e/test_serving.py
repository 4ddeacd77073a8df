"""`trainflow serve-model` on loopback and `trainflow predict energy`'s table, as a user runs them.

Two tiny champions share one state directory: energy trained by the real CLI, siamese by the
flow on synthetic Fashion-MNIST (its pins are swapped in-process). The server is the real
`trainflow` script started with no venv on PATH, as from cron or another shell.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import flows.siamese as siamese_flow
from lib.energy.constants import EXAMPLE_BUILDING, FEATURES, PREDICTED
from lib.siamese.recipes import PRESETS
from tests.e2e.servers import HOST, free_port, wait_until
from tests.fixtures.cli_process import Finished, cli_env, finish, run_cli, start_cli
from tests.fixtures.energy import HEADERS, energy_rows, write_energy_workbook
from tests.fixtures.fashion import synthetic_images, write_fashion_mirror

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

SERVER_START_SECONDS = 240
PORT_ATTEMPTS = 3
PINS = {
    "TRAIN_IMAGES": "train-images-idx3-ubyte.gz",
    "TRAIN_LABELS": "train-labels-idx1-ubyte.gz",
    "TEST_IMAGES": "t10k-images-idx3-ubyte.gz",
    "TEST_LABELS": "t10k-labels-idx1-ubyte.gz",
}
TRAINFLOW = Path(sys.executable).parent / "trainflow"
"""The console script a user runs, `.venv/bin/trainflow`."""
OUTPUTS = [*PREDICTED, "in_domain", "domain_note"]


@dataclass(frozen=True)
class Champions:
    env: dict[str, str]  # the CLI's environment: the state directory holding both models
    home: Path
    siamese_version: str


@pytest.fixture(scope="module")
def champions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Champions]:
    from flows.siamese import SiameseParameters, siamese_pipeline

    root = tmp_path_factory.mktemp("serving")
    home = root / "home"
    # Without the venv on PATH: what `.venv/bin/trainflow` sees when run from cron.
    env = cli_env(home, root / "prefect", TF_NUM_INTRAOP_THREADS="1", PATH="/usr/bin:/bin")
    env.pop("VIRTUAL_ENV", None)
    workbook = write_energy_workbook(root / "buildings.xlsx")
    trained = run_cli(["run", "energy", "--epochs", "3", "--source", str(workbook)], env)
    assert trained.returncode == 0, trained.screen
    assert "energy-efficiency v1 (new version, champion)" in trained.stdout, trained.screen
    with pytest.MonkeyPatch.context() as patch:
        pins = write_fashion_mirror(root / "mirror")
        for constant, name in PINS.items():
            patch.setattr(siamese_flow, constant, pins[name])
        cheap = PRESETS["default"].model_copy(update={"batch_size": 32})
        patch.setitem(PRESETS, "default", cheap)
        patch.setenv("TRAINFLOW_MIRROR", str(root / "mirror"))
        patch.setenv("TRAINFLOW_HOME", str(home))
        # The registry is the home's: never one an earlier test of this worker pointed at.
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        summary = siamese_pipeline(SiameseParameters(epochs=2, seed=1))
    yield Champions(env, home, summary.version)


class Served:
    """A `trainflow serve-model` process and its address."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args, self.env = args, env
        self._start()

    def _start(self) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.started = start_cli(
            ["serve-model", *self.args, "--port", str(self.port)],
            self.env,
            program=[str(TRAINFLOW)],
        )

    def post(self, body: Any) -> httpx.Response:
        content = body if isinstance(body, str) else json.dumps(body)
        headers = {"Content-Type": "application/json"}
        return httpx.post(f"{self.url}/invocations", content=content, headers=headers, timeout=60)

    def wait_ready(self) -> None:
        def answers() -> bool:
            try:
                return httpx.get(f"{self.url}/ping", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        for attempt in range(PORT_ATTEMPTS):
            try:
                process = self.started.process
                wait_until(answers, SERVER_START_SECONDS, "the scoring server", process)
                return
            except AssertionError as error:  # say what the command printed, not only its code
                screen = finish(self.started).screen
                # Another test process may bind the free port first (pytest-xdist): try another.
                if "is taken" in screen and attempt + 1 < PORT_ATTEMPTS:
                    self._start()
                    continue
                raise AssertionError(f"{error}\n{screen[-3000:]}") from None

    def stop(self) -> Finished:
        self.started.process.send_signal(signal.SIGTERM)
        return finish(self.started)


@pytest.fixture
def serving(champions: Champions) -> Iterator[list[Served]]:
    servers: list[Served] = []
    yield servers
    for server in servers:
        if server.started.process.poll() is None:
            server.stop()


def _assert_schema_error(response: httpx.Response, *fragments: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    assert "stack_trace" not in body and "Traceback" not in response.text


def _records(**changes: float) -> dict[str, Any]:
    return {**EXAMPLE_BUILDING, **changes}


def test_energy_champion_answers_flags_and_refuses_bad_requests(
    champions: Champions, serving: list[Served]
) -> None:
    server = Served(["energy"], champions.env)
    serving.append(server)
    server.wait_ready()

    good = server.post({"dataframe_records": [_records(), _records(X6=9), _records(X2=5000, X8=3)]})
    assert good.status_code == 200, good.text
    rows = good.json()["predictions"]
    assert [list(row) for row in rows] == [OUTPUTS] * 3
    assert all(0 < rows[0][name] < 100 for name in PREDICTED)
    assert all(isinstance(row[name], float) for row in rows for name in PREDICTED)
    assert [row["in_domain"] for row in rows] == [True, False, False]
    assert rows[0]["domain_note"] == ""
    assert rows[1]["domain_note"] == "X6=9 is a code not seen in training: 2, 3, 4, 5"
    assert rows[2]["domain_note"].startswith("X2=5000 is outside the training range")
    split = server.post(
        {"dataframe_split": {"columns": list(FEATURES), "data": [[*EXAMPLE_BUILDING.values()]]}}
    )
    [alone] = split.json()["predictions"]  # batch size may move float32 sums a little
    assert alone == {
        **rows[0],
        **{name: pytest.approx(rows[0][name], rel=1e-5) for name in PREDICTED},
    }

    missing = {key: value for key, value in _records().items() if key != "X3"}
    _assert_schema_error(server.post({"dataframe_records": [missing]}), "missing inputs ['X3']")
    _assert_schema_error(
        server.post({"dataframe_records": [_records(X1="big")]}),
        "Failed to convert column X1 to type 'float64'",
    )
    _assert_schema_error(server.post("{not json"), "valid JSON formatted string")
    _assert_schema_error(
        server.post({"dataframe_records": [_records(X5=None)]}),
        "row 0, column 'X5': Expected a finite number. Received: nan",
    )

    stopped = server.stop()
    assert stopped.returncode == 0, stopped.screen
    assert stopped.stdout.startswith(f"Serving energy-efficiency v1 at {server.url} ")
    assert f"Try: curl -s {server.url}/invocations" in stopped.stdout
    assert "Ready. Ctrl-C stops the server." in stopped.stdout
    assert "Traceback" not in stopped.screen and "uvicorn: not found" not in stopped.screen
    assert "oneDNN custom operations" not in stopped.stderr  # TensorFlow's banner is dropped
    assert "Uvicorn running on" in stopped.stderr  # the server's own log is passed on
    assert not list((champions.home / "tmp").glob("serve-*"))  # the model copy is removed


def test_siamese_version_answers_flags_and_refuses_bad_requests(
    champions: Champions, serving: list[Served]
) -> None:
    server = Served(["siamese", "--version", champions.siamese_version], champions.env)
    serving.append(server)
    server.wait_ready()

    images, labels = synthetic_images(3, seed=5)
    same = int(np.flatnonzero(labels == labels[0])[1])
    left = images[0].ravel().tolist()
    pairs = [[left, images[same].ravel().tolist()], [left, (255 - images[same]).ravel().tolist()]]
    good = server.post({"dataframe_split": {"columns": ["left", "right"], "data": pairs}})
    assert good.status_code == 200, good.text
    rows = good.json()["predictions"]
    assert [list(row) for row in rows] == [["distance", "same", "in_domain", "domain_note"]] * 2
    assert rows[0]["same"] is True and rows[0]["in_domain"] is True
    assert rows[1]["in_domain"] is False
    assert rows[1]["domain_note"].startswith("right image has a light background")

    _assert_schema_error(
        server.post({"dataframe_split": {"columns": ["left"], "data": [[left]]}}),
        "missing inputs ['right']",
    )
    _assert_schema_error(
        server.post({"dataframe_split": {"columns": ["left", "right"], "data": [[left, "x"]]}}),
        "row 0, column 'right': Expected a sequence of 784 numbers.",
    )
    _assert_schema_error(
        server.post(
            {"dataframe_split": {"columns": ["left", "right"], "data": [[left, left[:5]]]}}
        ),
        "column 'right': Expected a sequence of 784 pixel values",
    )

    stopped = server.stop()
    assert stopped.returncode == 0, stopped.screen
    assert stopped.stdout.startswith(f"Serving fashion-siamese v{champions.siamese_version} at ")
    assert "Traceback" not in stopped.screen


def test_predict_keeps_actual_loads_beside_the_predictions(
    champions: Champions, tmp_path: Path
) -> None:
    table = pd.DataFrame(energy_rows(4, seed=9), columns=list(HEADERS))
    given = tmp_path / "buildings.csv"
    table.to_csv(given, index=False)
    output = tmp_path / "predicted.csv"

    done = run_cli(["predict", "energy", str(given), "--output", str(output)], champions.env)

    assert done.returncode == 0, done.screen
    assert done.stdout == f"4 predictions written to {output}\n"
    assert "Traceback" not in done.stderr
    written = pd.read_csv(output, keep_default_na=False)
    assert list(written.columns) == [*HEADERS, *OUTPUTS]
    np.testing.assert_allclose(written[["Y1", "Y2"]], table[["Y1", "Y2"]])
    assert written["in_domain"].tolist() == [True] * 4
    assert not np.allclose(written["Y1_predicted"], written["Y1"], atol=1e-9)

    features_only = tmp_path / "features.csv"
    table.drop(columns=["Y1", "Y2"]).to_csv(features_only, index=False)
    printed = run_cli(["predict", "energy", str(features_only)], champions.env)
    assert printed.returncode == 0, printed.screen
    header = printed.stdout.splitlines()[0].split()
    assert header == [*FEATURES, *OUTPUTS]
