"""Drift between the data a model learned from and data arriving now: PSI, KS, new codes.

Two measures per column, because each misses what the other sees:

- PSI (population stability index) compares the shares of rows in bins cut at the
  reference's own quantiles: sum over bins of (new - ref) * ln(new / ref). It measures how
  much mass moved, whatever the sample size, and is the credit-scoring industry's rule of
  thumb for "this population changed" (`PSI_THRESHOLD`).
- The two-sample Kolmogorov-Smirnov test (`scipy.stats.ks_2samp`) gives the largest gap
  between the two empirical CDFs (the statistic D) and how likely a gap that large is by
  chance (the p-value), which accounts for how few rows were compared.

Integer-coded categories get PSI over their codes (a KS test on nominal codes would measure
an order that does not exist) and the codes the reference never held: a model has learned
nothing about those. SciPy does the statistics; the rest is a few lines of NumPy.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lib.core.atomic import atomic_path

if TYPE_CHECKING:
    import pandas as pd  # only annotated: `trainflow run` imports this module at start-up

PSI_BINS = 10
"""Deciles of the reference: the usual choice, about 10 % of the reference rows per bin."""
PSI_EPSILON = 1e-4
"""Share given to a bin that holds no rows on one side, so ln(new / ref) stays finite.

1e-4 is one row in 10,000: small enough that an empty bin on both sides adds nothing, large
enough that a bin filled only by new data adds a bounded, clearly visible amount.
"""
PSI_THRESHOLD = 0.2
"""PSI at or above this is a significant shift (common practice: < 0.1 stable, 0.1-0.2
moderate, >= 0.2 significant)."""
MIN_PSI_ROWS = 50
"""Fewest incoming rows PSI may flag on. Below about five rows per decile, PSI measures
sampling noise (ten rows of identical data routinely score above 0.2); KS, whose p-value
accounts for sample size, and new codes still flag small batches."""
KS_ALPHA = 0.01
"""KS flags only when a gap that large would arise by chance less often than this."""
KS_MIN_STATISTIC = 0.1
"""...and only when the gap between the two CDFs is at least this large.

With large samples a p-value alone flags shifts nobody cares about: 60,000 images against
60,000 make a CDF gap of 0.01 "significant" at 1 %. Requiring D >= 0.1 (a tenth of the rows
on the other side of some value) keeps the flag for shifts large enough to matter, while the
p-value keeps small samples from flagging noise (with 200 rows a side, D must reach ~0.16).
"""
NUMERIC = "numeric"
CATEGORY = "category"
REPORT_FILE = "drift.json"
PLOT_FILE = "drift.png"


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift: the measures, whether it is flagged, and why in words.

    Attributes:
        name: the column.
        kind: `NUMERIC` or `CATEGORY` (integer codes: no KS, new codes listed).
        reference_mean: mean in the reference (None for categories).
        incoming_mean: mean in the incoming data (None for categories).
        psi: population stability index, reference quantile bins (or codes).
        ks_statistic: the largest gap between the two CDFs (None for categories).
        p_value: KS p-value (None for categories).
        new_values: codes in the incoming data that the reference never held.
        flagged: whether this column drifted by the documented thresholds.
        reason: why it is flagged, or "" when it is not.
    """

    name: str
    kind: str
    reference_mean: float | None
    incoming_mean: float | None
    psi: float
    ks_statistic: float | None
    p_value: float | None
    new_values: tuple[float, ...]
    flagged: bool
    reason: str


@dataclass(frozen=True)
class DriftReport:
    """Every compared column, the row counts, and the verdict they give."""

    columns: tuple[ColumnDrift, ...]
    reference_rows: int
    incoming_rows: int

    @property
    def drifted(self) -> bool:
        """Drift when any column is flagged."""
        return any(column.flagged for column in self.columns)

    @property
    def flagged(self) -> tuple[str, ...]:
        """Names of the flagged columns, in column order."""
        return tuple(column.name for column in self.columns if column.flagged)

    def verdict(self) -> str:
        """A few words: "no drift", or "drift in" and the flagged columns."""
        return f"drift in {', '.join(self.flagged)}" if self.drifted else "no drift"

    def sizes(self) -> str:
        """How many rows each side held."""
        return f"{self.incoming_rows} rows; {self.reference_rows} reference rows"

    def rows(self) -> list[dict[str, str]]:
        """The report as table rows of text, the same for the terminal and the run report."""
        return [_row(column) for column in self.columns]

    def to_json(self) -> str:
        """Every field as JSON: what `write` stores and `from_json` reads back."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> DriftReport:
        """The report `to_json` wrote."""
        data = json.loads(text)
        columns = tuple(
            ColumnDrift(**{**column, "new_values": tuple(column["new_values"])})
            for column in data["columns"]
        )
        return cls(columns, data["reference_rows"], data["incoming_rows"])

    def write(self, target: Path) -> Path:
        """Store as JSON, temp-then-rename."""
        with atomic_path(target) as temporary:
            temporary.write_text(self.to_json())
        return target


def write_report(report: DriftReport, folder: Path) -> tuple[Path, Path]:
    """The report as JSON and its PSI bars as PNG in `folder`: what a run shows.

    The plot is drawn here, not by the caller, so that a cached drift step covers the
    plotting code too (`lib.core.code_version` follows this import).
    """
    from lib.core.plots import psi_bars

    return report.write(folder / REPORT_FILE), psi_bars(report, folder / PLOT_FILE)


def shares_psi(reference: np.ndarray, incoming: np.ndarray) -> float:
    """PSI of two vectors of bin shares (each summing to 1), empty bins at `PSI_EPSILON`."""
    expected = np.maximum(np.asarray(reference, dtype=np.float64), PSI_EPSILON)
    actual = np.maximum(np.asarray(incoming, dtype=np.float64), PSI_EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def numeric_psi(reference: np.ndarray, incoming: np.ndarray, bins: int = PSI_BINS) -> float:
    """PSI over bins cut at the reference's quantiles.

    Repeated quantiles (a column of few distinct values, like a height of 3.5 or 7 m)
    collapse into one edge, so a discrete column gets one bin per value rather than empty
    duplicates. A value equal to an edge falls in the bin above it, on both sides alike.
    """
    reference = np.asarray(reference, dtype=np.float64)
    edges = np.unique(np.quantile(reference, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    return shares_psi(_bin_shares(reference, edges), _bin_shares(incoming, edges))


def category_psi(reference: np.ndarray, incoming: np.ndarray) -> float:
    """PSI over the codes either side holds: one bin per code."""
    codes = np.union1d(reference, incoming)
    return shares_psi(_code_shares(reference, codes), _code_shares(incoming, codes))


def ks_test(reference: np.ndarray, incoming: np.ndarray) -> tuple[float, float]:
    """The two-sample KS statistic D and its p-value (`scipy.stats.ks_2samp`, two-sided)."""
    from scipy.stats import ks_2samp

    with warnings.catch_warnings():
        # With many ties SciPy's exact p-value can fail; it says so on stderr and falls back
        # to the asymptotic one, which is what we want anyway: no noise on the terminal.
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful")
        result = ks_2samp(reference, incoming)
    return float(result.statistic), float(result.pvalue)


def compare_frames(
    reference: pd.DataFrame,
    incoming: pd.DataFrame,
    columns: Sequence[str],
    categories: Collection[str] = (),
) -> DriftReport:
    """Drift of every one of `columns` in `incoming` against `reference`.

    Raises:
        ValueError: either frame has no rows, or lacks one of `columns`.
    """
    for label, frame in (("reference", reference), ("incoming", incoming)):
        missing = [name for name in columns if name not in frame.columns]
        if missing or frame.empty:
            raise ValueError(
                f"Expected {label} data with rows and columns {', '.join(columns)}. "
                f"Received: {len(frame)} rows, missing {', '.join(missing) or 'none'}"
            )
    drifts = tuple(
        _category_drift(name, reference[name].to_numpy(), incoming[name].to_numpy())
        if name in categories
        else _numeric_drift(name, reference[name].to_numpy(), incoming[name].to_numpy())
        for name in columns
    )
    return DriftReport(drifts, len(reference), len(incoming))


def _numeric_drift(name: str, reference: np.ndarray, incoming: np.ndarray) -> ColumnDrift:
    psi = numeric_psi(reference, incoming)
    statistic, p_value = ks_test(reference, incoming)
    reasons = []
    if psi >= PSI_THRESHOLD and len(incoming) >= MIN_PSI_ROWS:
        reasons.append(f"PSI {psi:.2f} >= {PSI_THRESHOLD}")
    if p_value < KS_ALPHA and statistic >= KS_MIN_STATISTIC:
        reasons.append(f"KS D {statistic:.2f} >= {KS_MIN_STATISTIC} at p {p_value:.1e}")
    return ColumnDrift(
        name=name,
        kind=NUMERIC,
        reference_mean=float(np.mean(reference)),
        incoming_mean=float(np.mean(incoming)),
        psi=psi,
        ks_statistic=statistic,
        p_value=p_value,
        new_values=(),
        flagged=bool(reasons),
        reason="; ".join(reasons),
    )


def _category_drift(name: str, reference: np.ndarray, incoming: np.ndarray) -> ColumnDrift:
    psi = category_psi(reference, incoming)
    new = tuple(float(code) for code in np.setdiff1d(incoming, reference))
    reasons = []
    if psi >= PSI_THRESHOLD and len(incoming) >= MIN_PSI_ROWS:
        reasons.append(f"PSI {psi:.2f} >= {PSI_THRESHOLD}")
    if new:
        reasons.append(f"codes never in the reference: {', '.join(f'{c:g}' for c in new)}")
    return ColumnDrift(
        name=name,
        kind=CATEGORY,
        reference_mean=None,
        incoming_mean=None,
        psi=psi,
        ks_statistic=None,
        p_value=None,
        new_values=new,
        flagged=bool(reasons),
        reason="; ".join(reasons),
    )


def _bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / len(values)


def _code_shares(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(codes, values), minlength=len(codes))
    return counts / len(values)


def _number(value: float | None, form: str) -> str:
    return "—" if value is None else format(value, form)


def _row(column: ColumnDrift) -> dict[str, str]:
    return {
        "column": column.name,
        "reference mean": _number(column.reference_mean, ".4g"),
        "incoming mean": _number(column.incoming_mean, ".4g"),
        "PSI": f"{column.psi:.3f}",
        "KS D": _number(column.ks_statistic, ".3f"),
        "KS p": _number(column.p_value, ".2g"),
        "drift": f"DRIFT: {column.reason}" if column.flagged else "no",
    }


def text_table(rows: Sequence[dict[str, str]]) -> str:
    """Rows of text as aligned columns under their headers, for a terminal."""
    headers = list(rows[0]) if rows else []
    widths = [max(len(h), *(len(row[h]) for row in rows)) for h in headers]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        cells = [row[h].ljust(w) for h, w in zip(headers, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def markdown_table(rows: Sequence[dict[str, str]]) -> str:
    """Rows of text as a Markdown table (pipes in cells escaped)."""
    headers = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(row[h].replace("|", "\\|") for h in headers) + " |")
    return "\n".join(lines)
