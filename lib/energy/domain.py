"""Whether buildings lie in the energy model's training domain, row by row.

A network answers any X1..X8 with a confident number; this says when that number is an
extrapolation. The domain comes from the training rows a version carries (its `reference`
artifact): a category code (X6 orientation, X8 glazing distribution) is in it when training
saw it; a measure (X1..X5, X7) when it lies within the training range widened by
`DOMAIN_MARGIN` of that range on each side. A version registered before it carried its
rows knows only the codes of the UCI schema: rows pass those with ``in_domain`` None
(unknown), because their ranges cannot be checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.core.serving import DOMAIN_NOTE, IN_DOMAIN
from lib.energy.constants import CATEGORY_CODES, DOMAIN_MARGIN, FEATURES


@dataclass(frozen=True)
class EnergyDomain:
    """The inputs one model version was trained on.

    Attributes:
        codes: category feature -> the codes it may hold.
        ranges: measured feature -> (lowest, highest) value accepted, margin included;
            empty when the version carries no training rows (ranges unknown).
    """

    codes: Mapping[str, tuple[float, ...]]
    ranges: Mapping[str, tuple[float, float]]

    @classmethod
    def from_training_rows(cls, rows: pd.DataFrame) -> EnergyDomain:
        """The domain of a version from the rows it was trained on."""
        codes = {
            name: tuple(float(code) for code in np.unique(rows[name].to_numpy("float64")))
            for name in CATEGORY_CODES
        }
        ranges = {}
        for name in FEATURES:
            if name in CATEGORY_CODES:
                continue
            values = rows[name].to_numpy("float64")
            low, high = float(values.min()), float(values.max())
            widen = DOMAIN_MARGIN * (high - low)
            ranges[name] = (low - widen, high + widen)
        return cls(codes, ranges)

    @classmethod
    def schema_only(cls) -> EnergyDomain:
        """What is known without training rows: the category codes of the UCI schema."""
        return cls(dict(CATEGORY_CODES), {})

    def check(self, features: pd.DataFrame) -> pd.DataFrame:
        """Columns `IN_DOMAIN` and `DOMAIN_NOTE` for each row of `features` (X1..X8).

        A row outside the domain gets False and every reason, e.g. ``"X6=9 is a code not
        seen in training (2, 3, 4, 5)"``; a row inside gets True and "", or None and a note
        when the ranges are unknown.
        """
        notes: list[list[str]] = [[] for _ in range(len(features))]
        for name, codes in self.codes.items():
            values = features[name].to_numpy("float64")
            shown = ", ".join(f"{code:g}" for code in codes)  # e.g. "2, 3, 4, 5"
            for row in np.flatnonzero(~np.isin(values, codes)):
                notes[row].append(f"{name}={values[row]:g} is a code not seen in training: {shown}")
        for name, (low, high) in self.ranges.items():
            values = features[name].to_numpy("float64")
            for row in np.flatnonzero((values < low) | (values > high)):
                notes[row].append(
                    f"{name}={values[row]:g} is outside the training range widened by "
                    f"{DOMAIN_MARGIN:.0%} ({low:.4g}..{high:.4g})"
                )
        inside: object = True if self.ranges else None
        unknown = "" if self.ranges else "ranges unknown: this version carries no training rows"
        return pd.DataFrame(
            {
                IN_DOMAIN: [False if found else inside for found in notes],
                DOMAIN_NOTE: ["; ".join(found) if found else unknown for found in notes],
            },
            index=features.index,
        )
