"""Which epochs reach the run's log: about one per tenth, whatever the epoch count."""

from __future__ import annotations

import pytest

from tasks.progress import LOG_PARTS, is_milestone


@pytest.mark.parametrize("total", [1, 2, 7, 10, 20, 30, 33, 300, 1000])
def test_the_log_gets_the_first_and_last_epoch_and_one_per_tenth(total: int) -> None:
    logged = [epoch for epoch in range(1, total + 1) if is_milestone(epoch, total)]

    assert logged[0] == 1 and logged[-1] == total
    assert len(logged) == min(total, LOG_PARTS + 1)
    gaps = [later - earlier for earlier, later in zip(logged, logged[1:], strict=False)]
    assert max(gaps, default=0) <= -(-total // LOG_PARTS)  # never more than a tenth apart


def test_a_300_epoch_fit_logs_every_30th_epoch() -> None:
    assert [epoch for epoch in range(1, 301) if is_milestone(epoch, 300)] == [
        1, 30, 60, 90, 120, 150, 180, 210, 240, 270, 300,
    ]  # fmt: skip
