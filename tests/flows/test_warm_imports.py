"""A warm re-run starts no TensorFlow: every step is cached, so no model code is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.energy import write_energy_workbook

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN = """
import json, sys
from flows.energy import EnergyParameters, energy_pipeline
summary = energy_pipeline(EnergyParameters(source=sys.argv[1], epochs=3, seed=2))
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print(json.dumps({"version": summary.version, "new": summary.newly_registered, "heavy": heavy}))
"""


def run_in_fresh_process(workbook: Path, home: Path, prefect_home: Path) -> dict[str, object]:
    env = {
        **os.environ,
        "TRAINFLOW_HOME": str(home),
        "PREFECT_HOME": str(prefect_home),
        "PYTHONPATH": str(REPO_ROOT),
    }
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(workbook)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_fully_cached_rerun_never_imports_tensorflow(tmp_path: Path) -> None:
    workbook = write_energy_workbook(tmp_path / "buildings.xlsx", n_rows=320)
    home, prefect_home = tmp_path / "home", tmp_path / "prefect"
    cold = run_in_fresh_process(workbook, home, prefect_home)
    assert cold["heavy"] == ["keras", "tensorflow"] and cold["new"]
    warm = run_in_fresh_process(workbook, home, prefect_home)
    assert warm == {"version": cold["version"], "new": False, "heavy": []}
