"""The siamese pipeline on the real Fashion-MNIST files, served from the ../shared/data mirror.

Two epochs of the course preset keep it to about a minute; the full recipes are measured by
benchmarks/siamese.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.siamese import SiameseParameters, siamese_pipeline
from lib.core.settings import load_settings
from lib.siamese.idx import read_table_metadata
from lib.siamese.pairs import read_pairs

pytestmark = [pytest.mark.slow, pytest.mark.data, pytest.mark.usefixtures("prefect_api")]


def test_real_files_train_and_register(
    trainflow_home: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINFLOW_MIRROR", str(shared_data))

    summary = siamese_pipeline(SiameseParameters(preset="course", epochs=2, seed=0))

    assert summary.promoted and summary.version == "1"
    assert summary.metrics["accuracy"] > 0.85 and summary.metrics["roc_auc"] > 0.9
    home = load_settings().home
    tables = {
        p.name: read_table_metadata(p) for p in (home / "data" / "fashion").rglob("*.parquet")
    }
    assert {name: meta["rows"] for name, meta in tables.items()} == {
        "train.parquet": 60_000,
        "test.parquet": 10_000,
    }
    test_pairs = read_pairs(next((home / "pairs" / "fashion").rglob("test.parquet")))
    assert len(test_pairs.label) == 2 * 10 * (1_000 - 1)
    assert test_pairs.left.max() < 10_000  # test pairs only from test images
