"""Course recipe vs our default on the real ENB2012 workbook, on identical splits.

    .venv/bin/python benchmarks/energy.py [--seeds 0 1 2] [--ablations] [--data PATH]

Prints test RMSE (Y1, Y2) and training wall time per seed and recipe, the means, and the
ratios the issue sets (default/course: RMSE <= 0.75, time <= 0.5). With --ablations it also
trains variants of the default with one change undone, to show what each change buys.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from lib.energy.constants import FEATURES, TARGETS  # noqa: E402
from lib.energy.evaluate import predict_loads  # noqa: E402
from lib.energy.metrics import flat_metrics  # noqa: E402
from lib.energy.recipes import PRESETS, EnergyRecipe  # noqa: E402
from lib.energy.splits import split_rows  # noqa: E402
from lib.energy.table import read_energy_workbook  # noqa: E402
from lib.energy.train import fit_energy  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ENB2012_data.xlsx"
ABLATIONS = {
    "default - one-hot encoding": {"one_hot": ()},
    "default - target scaling": {"scale_targets": False},
    "default - huber (mse)": {"loss": "mse"},
    "default - adam (sgd lr 1e-3, batch 10)": {
        "optimizer": "sgd",
        "learning_rate": 1e-3,
        "batch_size": 10,
        "weight_decay": 0.0,
    },
    "default - weight decay": {"weight_decay": 0.0},
    "default - cosine (early stopping, 400)": {
        "learning_rate_schedule": "constant",
        "epochs": 400,
        "early_stopping_patience": 40,
        "reduce_lr_patience": 15,
    },
}


def run(recipe: EnergyRecipe, rows: np.ndarray, seed: int) -> tuple[float, float, float]:
    """Train one recipe on one seed's split of `rows` (features, then targets, as float64).

    The split is the flow's own: the same content-fixed test rows for every seed and recipe.
    Returns test RMSE Y1, Y2 and fit seconds.
    """
    parts = split_rows(rows, seed=seed)
    x = rows[:, : len(FEATURES)].astype("float32")
    y = rows[:, len(FEATURES) :].astype("float32")
    with tempfile.TemporaryDirectory() as scratch:
        model, result = fit_energy(
            recipe,
            (x[parts.train], y[parts.train]),
            (x[parts.validation], y[parts.validation]),
            seed=seed,
            backup=Path(scratch) / "backup",
        )
    metrics = flat_metrics(y[parts.test], predict_loads(model, x[parts.test]))
    return metrics["Y1_rmse"], metrics["Y2_rmse"], result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ablations", action="store_true")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()

    frame = read_energy_workbook(args.data)
    rows = frame[[*FEATURES, *TARGETS]].to_numpy("float64")
    recipes = {"course": PRESETS["course"], "default": PRESETS["default"]}
    if args.ablations:
        recipes.update(
            {
                name: PRESETS["default"].model_copy(update=change)
                for name, change in ABLATIONS.items()
            }
        )

    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in recipes}
    print(f"{'recipe':<38} {'seed':>4} {'RMSE Y1':>8} {'RMSE Y2':>8} {'train s':>8}")
    for seed in args.seeds:
        for name, recipe in recipes.items():
            y1, y2, seconds = run(recipe, rows, seed)
            results[name].append((y1, y2, seconds))
            print(f"{name:<38} {seed:>4} {y1:>8.3f} {y2:>8.3f} {seconds:>8.1f}", flush=True)

    print(
        f"\n{'recipe (mean over seeds)':<38} {'RMSE Y1':>8} {'RMSE Y2':>8} {'train s':>8} "
        f"{'Y1/crs':>7} {'Y2/crs':>7} {'t/crs':>6}"
    )
    course = [statistics.mean(column) for column in zip(*results["course"], strict=True)]
    for name, rows in results.items():
        mean = [statistics.mean(column) for column in zip(*rows, strict=True)]
        ratios = [m / c for m, c in zip(mean, course, strict=True)]
        print(
            f"{name:<38} {mean[0]:>8.3f} {mean[1]:>8.3f} {mean[2]:>8.1f} "
            f"{ratios[0]:>7.2f} {ratios[1]:>7.2f} {ratios[2]:>6.2f}"
        )


if __name__ == "__main__":
    main()
