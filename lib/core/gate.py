"""The champion gate: a candidate replaces the champion only on evidence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate becomes champion, and the sentence that says why."""

    promote: bool
    reason: str


@dataclass(frozen=True)
class GatePolicy:
    """How one pipeline's candidates are judged.

    Attributes:
        score: the metric that decides who is better.
        lower_is_better: direction of `score`.
        floors: absolute floors every champion must clear, `{metric: (">=" or "<=", bound)}`.
        min_test_rows: fewest test rows (or pairs) a promotion may rest on; fewer measure
            noise, not the model.
    """

    score: str
    lower_is_better: bool
    floors: Mapping[str, tuple[str, float]]
    min_test_rows: int = 0

    def __post_init__(self) -> None:
        for metric, (direction, _) in self.floors.items():
            if direction not in (">=", "<="):
                raise ValueError(
                    f"Expected a floor direction '>=' or '<='. Received: {metric}={direction!r}"
                )


def champion_gate(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    policy: GatePolicy,
    test_rows: int,
) -> GateDecision:
    """Decide on promotion from metrics computed on the same `test_rows` rows (or pairs).

    The floors apply always, so a fresh registry does not crown a broken first model. A
    candidate score that is not finite never wins; a champion whose score is not finite
    (NaN, inf) cannot be compared with and is set aside, so it cannot block forever.
    """
    if test_rows < policy.min_test_rows:
        return GateDecision(
            False,
            f"only {test_rows} test rows; a promotion needs at least {policy.min_test_rows}",
        )
    score = policy.score
    if not np.isfinite(candidate[score]):
        return GateDecision(False, f"candidate {score}={candidate[score]:.4g} is not finite")
    for metric, (direction, bound) in policy.floors.items():
        value = candidate[metric]
        ok = value >= bound if direction == ">=" else value <= bound
        if not (ok and np.isfinite(value)):
            return GateDecision(
                False, f"candidate {metric}={value:.4g} fails the floor {direction} {bound:g}"
            )
    if champion is None:
        return GateDecision(
            True, f"no champion yet; candidate clears every floor ({score}={candidate[score]:.4g})"
        )
    mine, theirs = candidate[score], champion[score]
    if not np.isfinite(theirs):
        return GateDecision(
            True,
            f"champion {score}={theirs:.4g} cannot be compared, so it is set aside; candidate "
            f"clears every floor ({score}={mine:.4g})",
        )
    better = mine < theirs if policy.lower_is_better else mine > theirs
    verb = "beats" if better else "does not beat"
    return GateDecision(
        better,
        f"candidate {score}={mine:.4g} {verb} champion {score}={theirs:.4g} on the same test data",
    )
