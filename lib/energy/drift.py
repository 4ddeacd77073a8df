"""Energy drift: a table of buildings against the training rows of the champion.

Every measured feature and both loads are compared; orientation (X6) and glazing
distribution (X8) are integer codes, compared as categories (`lib.core.drift`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lib.core.drift import DriftReport, compare_frames
from lib.energy.constants import CATEGORY_CODES, FEATURES, TARGETS

DRIFT_COLUMNS = (*FEATURES, *TARGETS)


def energy_drift(reference: pd.DataFrame, incoming: pd.DataFrame) -> DriftReport:
    """Drift of X1..X8, Y1 and Y2 in `incoming` against `reference` (training rows)."""
    return compare_frames(reference, incoming, DRIFT_COLUMNS, categories=tuple(CATEGORY_CODES))


def read_reference(path: Path) -> pd.DataFrame:
    """The training rows a version carries (its `reference` artifact)."""
    return pd.read_parquet(path, columns=list(DRIFT_COLUMNS))


def table_drift(table: Path, reference: Path) -> DriftReport:
    """A run's validated Parquet table against a reference: the run's drift step."""
    return energy_drift(read_reference(reference), pd.read_parquet(table))
