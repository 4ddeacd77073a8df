"""The champion gate's decisions and the sentences that explain them."""

from __future__ import annotations

import math

import pytest

from lib.core.gate import GatePolicy, champion_gate

ENERGY = GatePolicy(
    score="rmse", lower_is_better=True, floors={"r2": (">=", 0.9)}, min_test_rows=50
)
ROWS = 154
SIAMESE = GatePolicy(
    score="accuracy", lower_is_better=False, floors={"accuracy": (">=", 0.8), "eer": ("<=", 0.3)}
)


def test_a_candidate_below_a_floor_fails_even_on_a_fresh_registry() -> None:
    decision = champion_gate({"rmse": 1.0, "r2": 0.5}, None, ENERGY, ROWS)
    assert not decision.promote
    assert decision.reason == "candidate r2=0.5 fails the floor >= 0.9"


def test_a_candidate_above_a_ceiling_fails() -> None:
    decision = champion_gate(
        {"accuracy": 0.95, "eer": 0.4}, {"accuracy": 0.5, "eer": 0.5}, SIAMESE, ROWS
    )
    assert not decision.promote
    assert decision.reason == "candidate eer=0.4 fails the floor <= 0.3"


def test_a_nan_metric_fails_its_floor() -> None:
    decision = champion_gate({"rmse": 1.0, "r2": float("nan")}, None, ENERGY, ROWS)
    assert not decision.promote
    assert "r2=nan fails the floor >= 0.9" in decision.reason


def test_an_infinite_metric_fails_its_floor_whatever_the_direction() -> None:
    decision = champion_gate({"accuracy": 0.9, "eer": -math.inf}, None, SIAMESE, ROWS)
    assert not decision.promote
    assert "eer=-inf" in decision.reason


def test_a_fresh_registry_promotes_a_candidate_that_clears_the_floors() -> None:
    decision = champion_gate({"rmse": 1.234, "r2": 0.95}, None, ENERGY, ROWS)
    assert decision.promote
    assert decision.reason == "no champion yet; candidate clears every floor (rmse=1.234)"


def test_a_better_candidate_is_promoted() -> None:
    decision = champion_gate({"rmse": 1.5, "r2": 0.95}, {"rmse": 2.25, "r2": 0.93}, ENERGY, ROWS)
    assert decision.promote
    assert decision.reason == ("candidate rmse=1.5 beats champion rmse=2.25 on the same test data")


def test_a_worse_candidate_keeps_the_champion() -> None:
    decision = champion_gate({"rmse": 2.5, "r2": 0.95}, {"rmse": 2.25, "r2": 0.93}, ENERGY, ROWS)
    assert not decision.promote
    assert decision.reason == (
        "candidate rmse=2.5 does not beat champion rmse=2.25 on the same test data"
    )


def test_a_tie_keeps_the_champion() -> None:
    decision = champion_gate({"rmse": 2.0, "r2": 0.95}, {"rmse": 2.0, "r2": 0.95}, ENERGY, ROWS)
    assert not decision.promote
    assert "does not beat" in decision.reason


@pytest.mark.parametrize(("accuracy", "promote"), [(0.92, True), (0.88, False)])
def test_higher_is_better_scores_compare_the_other_way(accuracy: float, promote: bool) -> None:
    decision = champion_gate({"accuracy": accuracy, "eer": 0.1}, {"accuracy": 0.9}, SIAMESE, ROWS)
    assert decision.promote is promote
    assert f"accuracy={accuracy:g}" in decision.reason
    assert "champion accuracy=0.9 " in decision.reason


def test_floors_apply_before_the_comparison() -> None:
    # Far better than a weak champion on the score, but under the r2 floor: no promotion.
    decision = champion_gate({"rmse": 0.1, "r2": 0.85}, {"rmse": 5.0, "r2": 0.91}, ENERGY, ROWS)
    assert not decision.promote
    assert "r2=0.85 fails the floor" in decision.reason


def test_too_few_test_rows_never_promote() -> None:
    decision = champion_gate({"rmse": 0.1, "r2": 0.99}, None, ENERGY, 2)
    assert not decision.promote
    assert decision.reason == "only 2 test rows; a promotion needs at least 50"


@pytest.mark.parametrize("score", [math.nan, math.inf])
def test_a_candidate_score_that_is_not_finite_never_wins(score: float) -> None:
    decision = champion_gate({"rmse": score, "r2": 0.95}, {"rmse": 2.0, "r2": 0.95}, ENERGY, ROWS)
    assert not decision.promote
    assert decision.reason == f"candidate rmse={score:.4g} is not finite"


def test_a_champion_that_scores_nan_is_set_aside() -> None:
    # `mine < nan` is always false: a NaN champion would otherwise block every candidate.
    decision = champion_gate({"rmse": 2.5, "r2": 0.95}, {"rmse": math.nan}, ENERGY, ROWS)
    assert decision.promote
    assert decision.reason.startswith("champion rmse=nan cannot be compared, so it is set aside")
