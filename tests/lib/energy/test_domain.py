"""The energy training domain: codes seen, ranges widened by the margin, flags per row."""

from __future__ import annotations

import pandas as pd
import pytest

from lib.energy.constants import DOMAIN_MARGIN, FEATURES
from lib.energy.domain import EnergyDomain
from tests.fixtures.energy import HEADERS, energy_rows


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    return pd.DataFrame(energy_rows(40, seed=3), columns=list(HEADERS))


def _buildings(training: pd.DataFrame, **changes: float) -> pd.DataFrame:
    row = training.loc[[0], list(FEATURES)].reset_index(drop=True)
    return row.assign(**changes)


def test_training_rows_are_all_in_their_own_domain(training: pd.DataFrame) -> None:
    flags = EnergyDomain.from_training_rows(training).check(training[list(FEATURES)])
    assert flags["in_domain"].tolist() == [True] * len(training)
    assert (flags["domain_note"] == "").all()
    assert flags.index.equals(training.index)


def test_an_unseen_orientation_code_is_flagged_with_the_codes_seen(
    training: pd.DataFrame,
) -> None:
    flags = EnergyDomain.from_training_rows(training).check(_buildings(training, X6=9.0))
    assert flags["in_domain"].tolist() == [False]
    assert flags["domain_note"][0] == "X6=9 is a code not seen in training: 2, 3, 4, 5"


def test_a_measure_inside_the_margin_passes_and_past_it_is_flagged(
    training: pd.DataFrame,
) -> None:
    domain = EnergyDomain.from_training_rows(training)
    low, high = training["X1"].min(), training["X1"].max()
    span = high - low
    near = high + 0.9 * DOMAIN_MARGIN * span
    far = high + 1.1 * DOMAIN_MARGIN * span
    flags = domain.check(pd.concat([_buildings(training, X1=near), _buildings(training, X1=far)]))
    assert flags["in_domain"].tolist() == [True, False]
    assert flags["domain_note"].iloc[1] == (
        f"X1={far:g} is outside the training range widened by 10% "
        f"({low - 0.1 * span:.4g}..{high + 0.1 * span:.4g})"
    )


def test_every_reason_of_a_row_is_given(training: pd.DataFrame) -> None:
    flags = EnergyDomain.from_training_rows(training).check(_buildings(training, X6=9.0, X2=5000.0))
    assert flags["domain_note"][0].split("; ")[0].startswith("X6=9 ")
    assert flags["domain_note"][0].split("; ")[1].startswith("X2=5000 ")


def test_without_training_rows_codes_are_checked_and_the_rest_is_unknown(
    training: pd.DataFrame,
) -> None:
    domain = EnergyDomain.schema_only()
    frame = pd.concat([_buildings(training), _buildings(training, X6=9.0, X1=50.0)])
    flags = domain.check(frame)
    assert flags["in_domain"].tolist() == [None, False]
    assert flags["domain_note"].tolist() == [
        "ranges unknown: this version carries no training rows",
        "X6=9 is a code not seen in training: 2, 3, 4, 5",
    ]
