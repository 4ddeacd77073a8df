"""What an evaluate stage returns, whatever the model: metrics, their evidence, the plots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Evaluated:
    """Test metrics of one model, the number of test rows (or pairs), and the plots."""

    metrics: dict[str, float]
    test_rows: int
    plots: tuple[Path, ...]
