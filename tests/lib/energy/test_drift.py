"""Energy drift: the columns compared, codes as categories, a real shift named."""

from __future__ import annotations

import pandas as pd

from lib.core.drift import CATEGORY, NUMERIC
from lib.energy.drift import DRIFT_COLUMNS, energy_drift
from tests.fixtures.energy import HEADERS, energy_rows


def _table(n_rows: int, seed: int, **narrowed: tuple[float, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(energy_rows(n_rows, seed, **narrowed), columns=list(HEADERS))
    return frame.astype({"X6": "int64", "X8": "int64"})


def test_another_sample_of_the_same_buildings_does_not_drift() -> None:
    report = energy_drift(_table(300, seed=0), _table(300, seed=1))
    assert not report.drifted, report.rows()
    assert [c.name for c in report.columns] == list(DRIFT_COLUMNS)
    kinds = {c.name: c.kind for c in report.columns}
    assert kinds["X6"] == kinds["X8"] == CATEGORY and kinds["X1"] == NUMERIC


def test_only_tall_fully_glazed_buildings_drift_in_height_glazing_and_loads() -> None:
    shifted = _table(300, seed=1, heights=(7.0,), glazing_areas=(0.4,))
    report = energy_drift(_table(300, seed=0), shifted)
    assert {"X5", "X7", "Y1", "Y2"} <= set(report.flagged)
    assert {"X1", "X6"}.isdisjoint(report.flagged)
