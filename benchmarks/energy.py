"""Energy recipes on the real ENB2012 workbook, under one protocol (BENCHMARKS.md, "Protocol").

    .venv/bin/python benchmarks/energy.py [--seeds 0 1 2 3 4] [--data PATH]
    .venv/bin/python benchmarks/energy.py --cv [VARIANT ...] [--seeds 0] [--folds 5]

The test rows are locked: the rows whose content hash falls in the lowest 20 % (the flow's own
`lib.energy.splits`), the same for every seed and recipe. Nothing is chosen on them.

`--cv` is how variants are chosen: k-fold cross-validation on the non-test rows only. The k
fold models of a variant train side by side in one fit (one model holding k copies of the
network, each with its own weights, its encoder and target scaling adapted on its own
training rows, and a sample weight of 0 on its held-out rows), which costs far less than k
fits of a network this small; each is scored on its held-out fold. Prints mean and spread
over folds and seeds, and the worst fold.

Without `--cv`: the final figures. For each seed the course recipe, the default and gradient
boosting (scikit-learn's `HistGradientBoostingRegressor`, `max_iter=2000, learning_rate=0.05`,
one model per target, untuned) train on all non-test rows and are scored once on the locked
test rows. The two networks train through `fit_energy`, the flow's own fit (checkpoints
included), one after the other per seed, so their wall times compare.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from lib.energy.constants import FEATURES, OUTPUT_NAMES, TARGETS  # noqa: E402
from lib.energy.recipes import PRESETS, EnergyRecipe  # noqa: E402
from lib.energy.splits import split_rows  # noqa: E402
from lib.energy.table import read_energy_workbook  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ENB2012_data.xlsx"
PREVIOUS_DEFAULT = PRESETS["default"].model_copy(
    update={"first_layer": "dense", "members": 1, "epochs": 300, "passes_per_epoch": 1}
)
"""The default before the protocol (0.76x / 0.54x of the course on the locked rows)."""
QUADRATIC: dict[str, object] = {"first_layer": "quadratic"}
CROSS: dict[str, object] = {"one_hot_crosses": (("X6", "X8"),)}
DEFAULT_CHANGES: dict[str, object] = {
    **QUADRATIC,
    "members": 3,
    "epochs": 30,
    "passes_per_epoch": 5,
}
VARIANTS: dict[str, dict[str, object]] = {
    "previous default": {},
    "+ Quadratic": QUADRATIC,
    "+ cross X6xX8": CROSS,
    "+ cross X6xX8, X1xX6": {"one_hot_crosses": (("X6", "X8"), ("X1", "X6"))},
    "+ Quadratic, cross X6xX8": {**QUADRATIC, **CROSS},
    "+ Quadratic, cross, log targets": {**QUADRATIC, **CROSS, "log_targets": True},
    "+ Quadratic, log targets": {**QUADRATIC, "log_targets": True},
    "+ Quadratic, 150 epochs": {**QUADRATIC, "epochs": 150},
    "+ Quadratic, 3 members": {**QUADRATIC, "members": 3},
    "+ Quadratic, 5 members, 100 ep": {**QUADRATIC, "members": 5, "epochs": 100},
    "+ Quadratic, 3 members, 150 ep": {**QUADRATIC, "members": 3, "epochs": 150},
    "+ 3 members, 150 ep (Dense128)": {"members": 3, "epochs": 150},
    "default: + Q., 3 m., 30 x 5 passes": DEFAULT_CHANGES,
    "default - Quadratic (Dense128)": {"members": 3, "epochs": 30, "passes_per_epoch": 5},
    # Third round (2026-11-28), each a change to the default: Y1 against a course run that
    # trains well (no diverged seed) needed more than the default gave on the locked rows.
    "default, 5 members": {**DEFAULT_CHANGES, "members": 5},
    "default, 60 x 5 passes": {**DEFAULT_CHANGES, "epochs": 60},
    "default, rate 3e-3": {**DEFAULT_CHANGES, "learning_rate": 3e-3},
    "default, rate 2e-2": {**DEFAULT_CHANGES, "learning_rate": 2e-2},
    "default, weight decay 0.005": {**DEFAULT_CHANGES, "weight_decay": 0.005},
    "default, weight decay 0.05": {**DEFAULT_CHANGES, "weight_decay": 0.05},
    "default, batch 32": {**DEFAULT_CHANGES, "batch_size": 32},
    "default, Huber 1.0": {**DEFAULT_CHANGES, "huber_threshold": 1.0},
}
"""Changes to the previous default, each judged by `--cv`."""
BOOSTING = {"max_iter": 2000, "learning_rate": 0.05}


def load_rows(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features and targets (float32) of the non-test rows, then of the locked test rows."""
    frame = read_energy_workbook(data)
    rows = frame[[*FEATURES, *TARGETS]].to_numpy("float64")
    parts = split_rows(rows, seed=0)  # the seed moves validation rows only, never test rows
    non_test = np.sort(np.concatenate([parts.train, parts.validation]))
    x = rows[:, : len(FEATURES)].astype("float32")
    y = rows[:, len(FEATURES) :].astype("float32")
    return x[non_test], y[non_test], x[parts.test], y[parts.test]


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted, "float64") - actual) ** 2)))


def cross_validate(
    recipe: EnergyRecipe, x: np.ndarray, y: np.ndarray, seed: int, folds: int
) -> tuple[list[tuple[float, float]], float]:
    """RMSE (Y1, Y2) on each held-out fold of the non-test rows, and the fit's seconds."""
    import keras
    from sklearn.model_selection import KFold

    from lib.energy.model import energy_outputs, loss_for, member_prefixes, optimizer_for

    keras.utils.set_random_seed(seed)
    splits = list(KFold(folds, shuffle=True, random_state=seed).split(x))
    inputs = keras.Input(shape=(x.shape[1],), name="features")
    outputs, targets, weights = [], [], []
    for fold, (train, _) in enumerate(splits):
        mask = np.zeros(len(x), "float32")
        mask[train] = 1.0
        for prefix in member_prefixes(recipe):
            outputs += energy_outputs(recipe, inputs, x[train], y[train], f"f{fold}_{prefix}")
            targets += [y[:, 0], y[:, 1]]
            weights += [mask, mask]
    model = keras.Model(inputs, outputs)
    fold_rows = round(len(x) * (folds - 1) / folds)
    model.compile(
        optimizer=optimizer_for(recipe, fold_rows),
        loss=[loss_for(recipe)] * len(outputs),
    )
    passes = recipe.passes_per_epoch  # as `fit_energy` does: one epoch, that many passes
    started = time.perf_counter()
    model.fit(
        np.tile(x, (passes, 1)),
        [np.tile(target, passes) for target in targets],
        sample_weight=[np.tile(weight, passes) for weight in weights],
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    predicted = dict(zip(model.output_names, model.predict(x, verbose=0), strict=True))
    scores = []
    for fold, (_, held_out) in enumerate(splits):
        fold_scores = []
        for i, name in enumerate(OUTPUT_NAMES):
            members = [predicted[f"f{fold}_{p}{name}"] for p in member_prefixes(recipe)]
            mean = np.mean([np.ravel(m) for m in members], axis=0)
            fold_scores.append(rmse(y[held_out, i], mean[held_out]))
        scores.append((fold_scores[0], fold_scores[1]))
    return scores, seconds


def print_cv(names: list[str], x: np.ndarray, y: np.ndarray, seeds: list[int], folds: int) -> None:
    print(f"{folds}-fold CV on {len(x)} non-test rows, seeds {seeds} (RMSE, mean ± sd of folds)")
    print(f"{'variant':<36} {'Y1':>13} {'worst':>6} {'Y2':>13} {'worst':>6} {'fit s':>6}")
    for name in names:
        recipe = PREVIOUS_DEFAULT.model_copy(update=VARIANTS[name])
        scores, seconds = [], []
        for seed in seeds:
            fold_scores, fit_seconds = cross_validate(recipe, x, y, seed, folds)
            scores += fold_scores
            seconds.append(fit_seconds)
        y1, y2 = [s[0] for s in scores], [s[1] for s in scores]
        print(
            f"{name:<36} {statistics.mean(y1):>6.3f} ± {statistics.stdev(y1):.3f} {max(y1):>6.3f} "
            f"{statistics.mean(y2):>6.3f} ± {statistics.stdev(y2):.3f} {max(y2):>6.3f} "
            f"{statistics.mean(seconds):>6.0f}",
            flush=True,
        )


def train_network(
    recipe: EnergyRecipe, data: tuple[np.ndarray, ...], seed: int
) -> tuple[float, float, float]:
    """Fit on all non-test rows through the flow's fit; test RMSE Y1, Y2 and fit seconds."""
    from lib.energy.evaluate import predict_loads
    from lib.energy.train import fit_energy

    x, y, x_test, y_test = data
    no_rows = (x[:0], y[:0])
    with tempfile.TemporaryDirectory() as scratch:
        model, result = fit_energy(
            recipe, (x, y), no_rows, seed=seed, backup=Path(scratch) / "backup"
        )
    predicted = predict_loads(model, x_test)
    return rmse(y_test[:, 0], predicted[:, 0]), rmse(y_test[:, 1], predicted[:, 1]), result.seconds


def train_boosting(data: tuple[np.ndarray, ...], seed: int) -> tuple[float, float, float]:
    """Gradient boosting as a user would try it: one untuned model per target."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    x, y, x_test, y_test = data
    started = time.perf_counter()
    scores = []
    for i in range(len(TARGETS)):
        model = HistGradientBoostingRegressor(**BOOSTING, random_state=seed).fit(x, y[:, i])
        scores.append(rmse(y_test[:, i], model.predict(x_test)))
    return scores[0], scores[1], time.perf_counter() - started


def print_final(data: tuple[np.ndarray, ...], seeds: list[int]) -> None:
    print(f"trained on {len(data[0])} non-test rows; RMSE on the {len(data[2])} locked test rows")
    print(f"{'model':<18} {'seed':>4} {'RMSE Y1':>8} {'RMSE Y2':>8} {'train s':>8}")
    results: dict[str, list[tuple[float, float, float]]] = {
        "course": [],
        "default": [],
        "gradient boosting": [],
    }
    for seed in seeds:
        for name in results:
            if name == "gradient boosting":
                result = train_boosting(data, seed)
            else:
                result = train_network(PRESETS[name], data, seed)
            results[name].append(result)
            print(f"{name:<18} {seed:>4} {result[0]:>8.3f} {result[1]:>8.3f} {result[2]:>8.1f}")
    course = results["course"]
    print(
        f"\n{'model (mean of seeds)':<22} {'RMSE Y1':>8} {'RMSE Y2':>8} {'train s':>8} "
        f"{'Y1/crs':>7} {'Y2/crs':>7} {'t/crs':>6} {'worst Y1/crs':>12} {'worst Y2/crs':>12}"
    )
    for name, rows in results.items():
        mean = [statistics.mean(column) for column in zip(*rows, strict=True)]
        course_mean = [statistics.mean(column) for column in zip(*course, strict=True)]
        ratios = [m / c for m, c in zip(mean, course_mean, strict=True)]
        worst = [
            max(row[i] / base[i] for row, base in zip(rows, course, strict=True)) for i in (0, 1)
        ]
        print(
            f"{name:<22} {mean[0]:>8.3f} {mean[1]:>8.3f} {mean[2]:>8.1f} {ratios[0]:>7.2f} "
            f"{ratios[1]:>7.2f} {ratios[2]:>6.2f} {worst[0]:>12.2f} {worst[1]:>12.2f}"
        )
    print(
        "\ntargets: default Y1/crs <= 0.60, Y2/crs <= 0.55, every seed < 0.75 on both, "
        "t/crs <= 0.30, and below gradient boosting on both outputs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--cv", nargs="*", choices=list(VARIANTS), default=None, help="variants (default: all)"
    )
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    x, y, x_test, y_test = load_rows(args.data)
    if args.cv is not None:
        print_cv(args.cv or list(VARIANTS), x, y, args.seeds or [0], args.folds)
    else:
        print_final((x, y, x_test, y_test), args.seeds or [0, 1, 2, 3, 4])
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
