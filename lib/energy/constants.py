"""Everything fixed about the energy-efficiency model: data, columns, registry name and gate.

One module holds these so that the flow, the registry tasks, serving and `predict` read the
same values; nothing here imports Keras or MLflow, and no recipe lives here, so a step that
reads a column name is not re-run when a preset changes.
"""

from __future__ import annotations

from lib.core.gate import GatePolicy
from lib.core.remote import RemoteFile

PIPELINE = "energy"
MODEL_NAME = "energy-efficiency"

WORKBOOK = RemoteFile(
    name="ENB2012_data.xlsx",
    mirror_path="ENB2012_data.xlsx",
    urls=("https://archive.ics.uci.edu/ml/machine-learning-databases/00242/ENB2012_data.xlsx",),
    sha256="0089fcffc1415e41e2ff63730cca5280efe54fc43d722dfde1b0aaa808e35dc4",
    size=76_189,
)

FEATURES = ("X1", "X2", "X3", "X4", "X5", "X6", "X7", "X8")
TARGETS = ("Y1", "Y2")
PREDICTED = ("Y1_predicted", "Y2_predicted")
"""The pyfunc's prediction columns, in the order of `TARGETS`: a table holding the actual
loads under `TARGETS` keeps them beside the predictions."""
OUTPUT_NAMES = ("y1_output", "y2_output")
"""The model's output layers, in the order of `TARGETS`."""
CATEGORY_CODES = {"X6": (2.0, 3.0, 4.0, 5.0), "X8": (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)}
"""Integer-coded categories (UCI ENB2012): X6 orientation 2..5, X8 glazing distribution 0..5."""
DOMAIN_MARGIN = 0.1
"""How far past the training range a measure may lie and still count as in the training
domain, as a share of that range: a 10 % extrapolation of smooth physics is a small step, a
building twice the largest one seen is not."""
EXAMPLE_BUILDING = {
    "X1": 0.98, "X2": 514.5, "X3": 294.0, "X4": 110.25,
    "X5": 7.0, "X6": 2.0, "X7": 0.0, "X8": 0.0,
}  # fmt: skip
"""The first building of the UCI workbook: the input example registered with the model."""

MIN_TEST_ROWS = 50
"""Fewest test rows a promotion may rest on: the 20 % share of a 250-row workbook."""
# A champion must explain at least 90 % of the variance of both loads; the better of two is
# the one with the lower mean test RMSE over Y1 and Y2.
GATE = GatePolicy(
    score="mean_rmse",
    lower_is_better=True,
    floors={"Y1_r2": (">=", 0.9), "Y2_r2": (">=", 0.9)},
    min_test_rows=MIN_TEST_ROWS,
)
