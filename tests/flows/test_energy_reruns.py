"""Re-runs of the energy flow redo exactly the steps downstream of what changed.

One cold run fills the cache of a module-wide state directory; each case then changes one
thing (nothing, a parameter, a `lib` module, the workbook) and reads back which task runs
were Cached and which ran.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import lib
from flows.energy import EnergyParameters, energy_pipeline
from lib.core.code_version import module_file, package_root
from lib.energy.constants import MODEL_NAME
from tests.fixtures.energy import write_energy_workbook
from tests.fixtures.prefect_runs import flow_run_artifacts, task_states

pytestmark = pytest.mark.usefixtures("prefect_api")

EPOCHS = 3  # of the default's 5 passes each: which steps rerun is the point, not the fit
SEED = 3
# Task run names start with their step; longer prefixes first ("evaluate-champion" vs "evaluate").
STEPS = (
    "ingest",
    "excel-to-parquet",
    "split",
    "train",
    "evaluate-champion",
    "evaluate",
    "drift",
    "register",
)
PIPELINE = ("ingest", "excel-to-parquet", "split", "train", "evaluate")


@dataclass(frozen=True)
class Warm:
    """A state directory whose cache holds one finished run of `params`."""

    home: Path
    workbook: Path
    params: EnergyParameters


def step_of(task_run_name: str) -> str:
    return next(step for step in STEPS if task_run_name.startswith(step))


def run(params: EnergyParameters) -> tuple[dict[str, Any], dict[str, str], Any]:
    """Run the flow; return its summary, `{step: state name}` and the flow run id."""
    state = energy_pipeline(params, return_state=True)
    flow_run_id = state.state_details.flow_run_id
    states = {step_of(name): value for name, value in task_states(flow_run_id).items()}
    return state.result(), states, flow_run_id


def reran(states: dict[str, str]) -> set[str]:
    """The pipeline steps that ran instead of coming from the cache."""
    return {step for step in PIPELINE if states[step] != "Cached"}


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warm]:
    folder = tmp_path_factory.mktemp("reruns")
    workbook = write_energy_workbook(folder / "buildings.xlsx", n_rows=320)
    params = EnergyParameters(source=str(workbook), epochs=EPOCHS, seed=SEED)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAINFLOW_HOME", str(folder / "home"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("TRAINFLOW_MIRROR", raising=False)
        summary, states, _ = run(params)
        assert reran(states) == set(PIPELINE), states
        assert summary.version == "1" and "drift" not in states  # no champion to compare with
        # Now the champion, so the next run compares the table with its own training rows.
        again, states, _ = run(params)
        assert "training data: no drift (320 rows; " in again.drift, again.drift
        assert states["drift"] == "Completed"
        yield Warm(folder / "home", workbook, params)


def test_nothing_changed_leaves_every_task_but_register_cached(warm: Warm) -> None:
    summary, states, flow_run_id = run(warm.params)

    assert {step: state for step, state in states.items() if state != "Cached"} == {
        "register": "Completed"
    }
    assert not summary.newly_registered and summary.version == "1"
    found = flow_run_artifacts(flow_run_id)
    assert "nothing changed" in found["energy-report"].data.lower()
    link = found["energy-model"].data
    assert f"(http://127.0.0.1:5000/#/models/{MODEL_NAME}/versions/1)" in link, link
    assert found["energy-metrics"].type == "table"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"seed": SEED + 1}, {"split", "train", "evaluate"}),
        ({"epochs": EPOCHS + 1}, {"train", "evaluate"}),
    ],
    ids=["seed", "epochs"],
)
def test_changed_parameter_reruns_its_downstream_steps(
    warm: Warm, change: dict[str, Any], expected: set[str]
) -> None:
    _, states, _ = run(warm.params.model_copy(update=change))
    assert reran(states) == expected, states


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("lib.energy.table", {"excel-to-parquet", "split", "train", "evaluate"}),
        # Not named by any task: reached through the import closure of lib.energy.table.
        ("lib.core.table_files", {"excel-to-parquet", "split", "train", "evaluate"}),
        ("lib.energy.splits", {"split", "train", "evaluate"}),
        ("lib.core.training", {"train", "evaluate"}),
        ("lib.components.layers", {"train", "evaluate"}),
        ("lib.core.plots", {"evaluate"}),
        ("lib.siamese.pairs", set()),
    ],
)
def test_edited_lib_module_reruns_the_steps_that_use_it(
    warm: Warm, module: str, expected: set[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An edit as the code version sees one: a copy of the lib tree with one line more in
    # `module`, read in place of the real tree.
    copy = tmp_path / "lib"
    shutil.copytree(package_root(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    edited = module_file(module, copy)
    edited.write_text(edited.read_text() + "\n# edited\n")
    monkeypatch.setattr(lib, "__file__", str(copy / "__init__.py"))
    _, states, _ = run(warm.params)
    assert reran(states) == expected, states


def test_edited_workbook_at_the_same_path_reruns_everything(warm: Warm, tmp_path: Path) -> None:
    own = tmp_path / "buildings.xlsx"
    shutil.copyfile(warm.workbook, own)
    params = warm.params.model_copy(update={"source": str(own)})
    _, same_bytes, _ = run(params)
    write_energy_workbook(own, n_rows=320, seed=1)

    _, edited, _ = run(params)

    # Another path with the same bytes is read again, then hits every cache below it.
    assert reran(same_bytes) == {"ingest"}, same_bytes
    assert reran(edited) == set(PIPELINE), edited
