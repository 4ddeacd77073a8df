"""The siamese flow end to end on ten synthetic classes, under a Prefect test harness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import flows.siamese as siamese_flow
from flows.siamese import SiameseParameters, siamese_pipeline
from lib.core.settings import load_settings
from lib.siamese.recipes import PRESETS
from tests.fixtures.fashion import write_fashion_mirror

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def synthetic_fashion(
    trainflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Pins and mirror swapped for a synthetic set; a cheap default preset."""
    mirror = tmp_path / "mirror"
    pins = write_fashion_mirror(mirror)
    for constant, name in {
        "TRAIN_IMAGES": "train-images-idx3-ubyte.gz",
        "TRAIN_LABELS": "train-labels-idx1-ubyte.gz",
        "TEST_IMAGES": "t10k-images-idx3-ubyte.gz",
        "TEST_LABELS": "t10k-labels-idx1-ubyte.gz",
    }.items():
        monkeypatch.setattr(siamese_flow, constant, pins[name])
    # 360 training images make 11 in-batch steps an epoch in batches of 32 (1 in 256s).
    monkeypatch.setitem(
        PRESETS, "default", PRESETS["default"].model_copy(update={"batch_size": 32})
    )
    monkeypatch.setenv("TRAINFLOW_MIRROR", str(mirror))
    return mirror


def test_siamese_flow_trains_registers_serves(synthetic_fashion: Path) -> None:
    summary = siamese_pipeline(SiameseParameters(epochs=4, seed=1))

    assert summary.version == "1" and summary.promoted, summary.reason
    assert (
        summary.drift == "not checked: fashion-siamese has no champion yet: nothing to compare with"
    )
    metrics = summary.metrics
    assert metrics["accuracy"] > 0.9 and metrics["roc_auc"] > 0.95
    assert 0 < metrics["threshold"] < 2
    reports = list((load_settings().home / "reports" / "siamese").rglob("*.png"))
    assert {p.name for p in reports} == {
        "distances.png",
        "roc.png",
        "learning-curves.png",
        "pairs.png",
    }
    pairs = list((load_settings().home / "pairs" / "fashion").rglob("test.parquet"))
    assert len(pairs) == 1 and pairs[0].stat().st_size < 20_000  # indices, not pixels

    again = siamese_pipeline(SiameseParameters(epochs=4, seed=1))
    assert not again.newly_registered and again.version == "1"
    # All 400 incoming images against the 360 the champion trained on (10 % held out).
    assert (
        again.drift
        == "against champion v1's training data: no drift (400 rows; 360 reference rows)"
    )
    _check_siamese_from_the_shell(synthetic_fashion / "fashion-mnist")

    # A new candidate is judged against the champion re-measured on its own test pairs.
    rival = siamese_pipeline(SiameseParameters(epochs=1, seed=2))
    assert rival.version == "2" and rival.champion_metrics is not None
    assert rival.champion_metrics["accuracy"] > 0.9
    assert ("beats" in rival.reason) == rival.promoted

    script = textwrap.dedent(
        """
        import json, mlflow, pandas as pd
        from tests.fixtures.fashion import synthetic_images
        images, labels = synthetic_images(3, seed=5)
        same = [i for i in range(len(labels)) if labels[i] == labels[0]][1]
        other = [i for i in range(len(labels)) if labels[i] != labels[0]][0]
        right = [images[same].ravel().tolist(), images[other].ravel().tolist()]
        frame = pd.DataFrame({"left": [images[0].ravel().tolist()] * 2, "right": right})
        model = mlflow.pyfunc.load_model("models:/fashion-siamese@champion")
        out = model.predict(frame)
        print(json.dumps({"columns": list(out.columns), "same": out["same"].tolist()}))
        """
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": load_settings().tracking_uri}
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    served = json.loads(child.stdout.strip().splitlines()[-1])
    assert served == {
        "columns": ["distance", "same", "in_domain", "domain_note"],
        "same": [True, False],
    }


def test_corrupt_download_fails_before_training(synthetic_fashion: Path) -> None:
    (synthetic_fashion / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"junk")

    state = siamese_pipeline(SiameseParameters(epochs=1), return_state=True)

    assert state.is_failed()
    with pytest.raises(Exception, match="t10k-labels-idx1-ubyte.gz"):
        state.result()
    assert not (load_settings().home / "models").exists()


def _check_siamese_from_the_shell(folder: Path) -> None:
    """`trainflow check siamese`: the champion's own images pass, brighter ones minus a class
    do not (exit 3, both named)."""
    from tests.fixtures.cli_process import cli_env, run_cli
    from tests.fixtures.fashion import synthetic_images, write_idx

    env = cli_env(load_settings().home, folder.parent / "prefect")
    same = run_cli(
        ["check", "siamese", "--images", str(folder / "train-images-idx3-ubyte.gz"),
         "--labels", str(folder / "train-labels-idx1-ubyte.gz")],
        env,
    )  # fmt: skip
    assert same.returncode == 0 and same.stderr == "", same.screen
    assert same.stdout.splitlines()[-1].startswith("no drift: ")
    images, labels = synthetic_images(40, seed=7)
    kept = labels != 0
    brighter = (images[kept] // 2 + 100).astype("uint8")
    shifted = run_cli(
        ["check", "siamese", "--images", str(write_idx(folder.parent / "new-images.gz", brighter)),
         "--labels", str(write_idx(folder.parent / "new-labels.gz", labels[kept]))],
        env,
    )  # fmt: skip
    assert shifted.returncode == 3 and shifted.stderr == "", shifted.screen
    verdict = shifted.stdout.splitlines()[-1]
    assert (
        verdict.startswith("DRIFT: ") and "fashion-siamese v1's training data in class, " in verdict
    )
    assert "mean intensity" in verdict
