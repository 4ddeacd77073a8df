"""`trainflow check energy`: a workbook against the champion's training rows, no training."""

from __future__ import annotations

from pathlib import Path

from lib.core.champion import champion_reference
from lib.core.drift import DriftReport
from lib.energy.constants import MODEL_NAME
from lib.energy.drift import energy_drift, read_reference
from lib.energy.table import read_energy_workbook


def check_energy(workbook: Path) -> tuple[str, DriftReport]:
    """Validate `workbook` as a run would, then compare it with the champion's reference.

    The workbook is checked first: bad input fails the same way with or without a champion.
    Returns the champion's version and the report.

    Raises:
        WorkbookError: the workbook breaks the schema (the message a run would give).
        LookupError: no champion, or one without a reference.
    """
    incoming = read_energy_workbook(workbook)
    with champion_reference(MODEL_NAME) as (version, reference):
        return version, energy_drift(read_reference(reference), incoming)
