"""PSI, KS and the drift flag on cases small enough to compute by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.core.drift import (
    KS_MIN_STATISTIC,
    MIN_PSI_ROWS,
    PSI_EPSILON,
    DriftReport,
    category_psi,
    compare_frames,
    ks_test,
    markdown_table,
    numeric_psi,
    shares_psi,
    text_table,
)


def test_psi_of_two_share_vectors_by_hand() -> None:
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    expected = 0.25 * math.log(2) + 0.25 * math.log(1.5)
    assert shares_psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(expected)


def test_an_empty_bin_counts_at_epsilon_not_infinity() -> None:
    expected = (1 - 0.5) * math.log(1 / 0.5) + (PSI_EPSILON - 0.5) * math.log(PSI_EPSILON / 0.5)
    assert shares_psi(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == pytest.approx(expected)
    assert shares_psi(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0  # empty on both sides


def test_identical_samples_have_no_psi_and_a_ks_gap_of_zero() -> None:
    values = np.arange(100, dtype=float)
    assert numeric_psi(values, values) == 0.0
    assert ks_test(values, values) == (0.0, 1.0)


def test_quantile_bins_hold_a_tenth_of_the_reference_each() -> None:
    reference = np.arange(1000, dtype=float)
    # All incoming values in the reference's lowest decile: 100 % vs 10 % there, eps elsewhere.
    incoming = np.arange(50, dtype=float)
    low = (1 - 0.1) * math.log(1 / 0.1)
    rest = 9 * (PSI_EPSILON - 0.1) * math.log(PSI_EPSILON / 0.1)
    assert numeric_psi(reference, incoming) == pytest.approx(low + rest)


def test_a_two_valued_column_gets_one_bin_per_value() -> None:
    reference = np.array([3.5] * 50 + [7.0] * 50)
    incoming = np.array([3.5] * 25 + [7.0] * 75)
    assert numeric_psi(reference, incoming) == pytest.approx(
        shares_psi(np.array([0.5, 0.5]), np.array([0.25, 0.75]))
    )


def test_category_psi_counts_each_code_including_new_ones() -> None:
    reference = np.array([2, 2, 3, 3])
    incoming = np.array([2, 3, 3, 5])
    expected = shares_psi(np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.5, 0.25]))
    assert category_psi(reference, incoming) == pytest.approx(expected)


def test_ks_statistic_of_disjoint_samples_is_one() -> None:
    statistic, p_value = ks_test(np.arange(50.0), np.arange(100.0, 150.0))
    assert statistic == 1.0 and p_value < 1e-20


def _frames(shift: float, n_rows: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=n_rows), "code": rng.integers(0, 3, n_rows)})
    incoming = pd.DataFrame(
        {"x": rng.normal(loc=shift, size=n_rows), "code": rng.integers(0, 3, n_rows)}
    )
    return reference, incoming


def test_same_distribution_is_not_flagged() -> None:
    report = compare_frames(*_frames(0.0), ["x", "code"], categories=["code"])
    assert not report.drifted and report.flagged == ()
    assert report.verdict() == "no drift"
    assert report.sizes() == "400 rows; 400 reference rows"


def test_a_shifted_column_is_flagged_with_its_reasons() -> None:
    report = compare_frames(*_frames(1.0), ["x", "code"], categories=["code"])
    assert report.flagged == ("x",)
    [x, code] = report.columns
    assert "PSI" in x.reason and "KS D" in x.reason and code.reason == ""
    assert code.ks_statistic is None and code.p_value is None  # no KS on nominal codes
    assert report.verdict() == "drift in x"


def test_a_code_the_reference_never_held_is_flagged_even_when_rare() -> None:
    reference, incoming = _frames(0.0)
    incoming.loc[0, "code"] = 7
    report = compare_frames(reference, incoming, ["code"], categories=["code"])
    assert report.flagged == ("code",) and report.columns[0].new_values == (7.0,)
    assert "codes never in the reference: 7" in report.columns[0].reason


def test_a_tiny_significant_gap_in_a_huge_sample_is_not_drift() -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"x": rng.normal(size=60_000)})
    incoming = pd.DataFrame({"x": rng.normal(loc=0.05, size=60_000)})
    [column] = compare_frames(reference, incoming, ["x"]).columns
    assert column.p_value is not None and column.p_value < 1e-6  # "significant"...
    assert column.ks_statistic is not None and column.ks_statistic < KS_MIN_STATISTIC
    assert not column.flagged  # ...but too small to matter


def test_psi_does_not_flag_a_batch_too_small_to_measure() -> None:
    reference, _ = _frames(0.0)
    few = reference.iloc[: MIN_PSI_ROWS // 5]  # the same rows: PSI is noise on so few
    [column] = compare_frames(reference, few, ["x"]).columns
    assert column.psi > 0.2 and not column.flagged


def test_empty_or_incomplete_frames_are_refused() -> None:
    reference, incoming = _frames(0.0)
    with pytest.raises(ValueError, match="Expected incoming data with rows"):
        compare_frames(reference, incoming.iloc[:0], ["x"])
    with pytest.raises(ValueError, match="missing y"):
        compare_frames(reference, incoming, ["x", "y"])


def test_a_report_round_trips_through_json_and_renders(tmp_path: Path) -> None:
    reference, incoming = _frames(1.0)
    incoming.loc[0, "code"] = 9
    report = compare_frames(reference, incoming, ["x", "code"], categories=["code"])
    stored = DriftReport.from_json(report.write(tmp_path / "drift.json").read_text())
    assert stored == report
    text = text_table(report.rows())
    assert text.splitlines()[0].split() == [
        *("column", "reference", "mean", "incoming", "mean", "PSI", "KS", "D", "KS", "p"),
        "drift",
    ]
    assert "DRIFT: PSI" in text and "codes never in the reference: 9" in text
    markdown = markdown_table(report.rows())
    assert markdown.startswith("| column | reference mean |") and "|---|" in markdown
