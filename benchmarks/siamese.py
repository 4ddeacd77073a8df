"""The course's Siamese recipe vs our presets on real Fashion-MNIST, side by side.

    .venv/bin/python benchmarks/siamese.py [--seeds 0 1] [--data DIR] [--recipes ...]

Each (recipe, seed) runs in a fresh child process so its peak memory is its own. Printed per
run: test accuracy on course-protocol test pairs (distance < 0.5, and at the threshold
calibrated on validation pairs where the recipe has them), pair-building seconds, bytes held
by pairs, peak RSS of the process and training wall time.

`course-recipe` is the course's code, kept as the course wrote it: pairs built by a Python
loop as float32 pixel arrays over all 60,000 training images, test pairs as validation data,
RMSprop, batch 128, 20 epochs. (It uses our EuclideanDistance layer where the course used a
Lambda; the arithmetic is the same.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"
RECIPES = ("course-recipe", "course", "default")


def _load(data: Path) -> tuple:
    from lib.siamese.idx import read_images, read_labels

    return (
        read_images(data / "train-images-idx3-ubyte.gz"),
        read_labels(data / "train-labels-idx1-ubyte.gz"),
        read_images(data / "t10k-images-idx3-ubyte.gz"),
        read_labels(data / "t10k-labels-idx1-ubyte.gz"),
    )


def _course_loop_pairs(x, labels):  # type: ignore[no-untyped-def]
    """The course's create_pairs_on_set, verbatim in spirit: a Python loop copying pixels."""
    import numpy as np

    digit_indices = [np.where(labels == i)[0] for i in range(10)]
    pairs, y = [], []
    n = min(len(digit_indices[d]) for d in range(10)) - 1
    for d in range(10):
        for i in range(n):
            z1, z2 = digit_indices[d][i], digit_indices[d][i + 1]
            pairs += [[x[z1], x[z2]]]
            inc = random.randrange(1, 10)
            dn = (d + inc) % 10
            z1, z2 = digit_indices[d][i], digit_indices[dn][i]
            pairs += [[x[z1], x[z2]]]
            y += [1, 0]
    return np.array(pairs), np.array(y).astype("float32")


def run_course_recipe(data: Path, seed: int) -> dict[str, float]:
    import keras
    import numpy as np

    from lib.components import ContrastiveLoss, EuclideanDistance
    from lib.siamese.metrics import roc_auc

    random.seed(seed)
    keras.utils.set_random_seed(seed)
    train_x, train_y, test_x, test_y = _load(data)
    train_x, test_x = train_x.astype("float32") / 255.0, test_x.astype("float32") / 255.0
    started = time.perf_counter()
    tr_pairs, tr_y = _course_loop_pairs(train_x, train_y)
    ts_pairs, ts_y = _course_loop_pairs(test_x, test_y)
    pair_seconds = time.perf_counter() - started
    image = keras.Input(shape=(28, 28))
    hidden = keras.layers.Flatten()(image)
    hidden = keras.layers.Dense(128, activation="relu")(hidden)
    hidden = keras.layers.Dropout(0.1)(hidden)
    hidden = keras.layers.Dense(128, activation="relu")(hidden)
    hidden = keras.layers.Dropout(0.1)(hidden)
    hidden = keras.layers.Dense(128, activation="relu")(hidden)
    base = keras.Model(image, hidden)
    left, right = keras.Input(shape=(28, 28)), keras.Input(shape=(28, 28))
    distance = EuclideanDistance()([base(left), base(right)])
    model = keras.Model([left, right], distance)
    model.compile(loss=ContrastiveLoss(margin=1.0), optimizer=keras.optimizers.RMSprop())
    started = time.perf_counter()
    model.fit(
        [tr_pairs[:, 0], tr_pairs[:, 1]],
        tr_y,
        epochs=20,
        batch_size=128,
        validation_data=([ts_pairs[:, 0], ts_pairs[:, 1]], ts_y),
        verbose=0,
    )
    train_seconds = time.perf_counter() - started
    predicted = np.ravel(model.predict([ts_pairs[:, 0], ts_pairs[:, 1]], verbose=0))
    return {
        "accuracy_at_0.5": float(np.mean((predicted < 0.5) == ts_y)),
        "accuracy_calibrated": float("nan"),
        "roc_auc": roc_auc(ts_y, -predicted),
        "pair_seconds": pair_seconds,
        "pair_bytes": float(tr_pairs.nbytes + ts_pairs.nbytes + tr_y.nbytes + ts_y.nbytes),
        "train_seconds": train_seconds,
    }


def run_preset(preset: str, data: Path, seed: int) -> dict[str, float]:
    """One of our presets through the same lib steps the flow runs."""
    import numpy as np

    from lib.siamese.evaluate import calibrated_metrics
    from lib.siamese.pairs import balanced_pairs, course_pairs
    from lib.siamese.protocol import plan_pairs
    from lib.siamese.recipes import PRESETS
    from lib.siamese.train import fit_siamese

    recipe = PRESETS[preset]
    train_x, train_y, test_x, test_y = _load(data)
    started = time.perf_counter()
    plan = plan_pairs(train_y, test_y, seed)
    # What one epoch trains on, built here only to time and weigh it like the course's pairs:
    # its pairs, or for pairs='in_batch' the order of the training images (int32 positions).
    epoch_bytes = 0
    if recipe.pairs == "course":
        epoch_pairs = course_pairs(train_y, np.random.default_rng(seed), indices=plan.kept)
    elif recipe.pairs == "balanced":
        assert recipe.pairs_per_epoch is not None
        epoch_pairs = balanced_pairs(
            train_y, recipe.pairs_per_epoch, np.random.default_rng(seed), indices=plan.kept
        )
    else:
        epoch_pairs = None
        epoch_bytes = np.random.default_rng(seed).permutation(plan.kept).astype(np.int32).nbytes
    pair_seconds = time.perf_counter() - started
    pair_bytes = epoch_bytes + sum(
        p.left.nbytes + p.right.nbytes + p.label.nbytes
        for p in (plan.validation, plan.test, epoch_pairs)
        if p is not None
    )
    with tempfile.TemporaryDirectory() as scratch:
        model, result = fit_siamese(
            recipe,
            train_x,
            train_y,
            plan.kept,
            plan.validation,
            seed=seed,
            backup=Path(scratch) / "backup",
        )
    metrics, _ = calibrated_metrics(model, train_x, plan.validation, test_x, plan.test)
    return {
        "accuracy_at_0.5": metrics["accuracy_at_0.5"],
        "accuracy_calibrated": metrics["accuracy"],
        "roc_auc": metrics["roc_auc"],
        "pair_seconds": pair_seconds,
        "pair_bytes": float(pair_bytes),
        "train_seconds": result.seconds,
    }


def child(recipe: str, seed: int, data: Path) -> None:
    from lib.core.malloc import cap_arenas

    cap_arenas()  # as `trainflow run` does, before TensorFlow starts its thread pools
    if recipe == "course-recipe":
        result = run_course_recipe(data, seed)
    else:
        result = run_preset(recipe, data, seed)
    result["peak_rss_bytes"] = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--child", nargs=2, metavar=("RECIPE", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.data)
        return

    header = (
        f"{'recipe':<14} {'seed':>4} {'acc@0.5':>8} {'acc@cal':>8} {'AUC':>7} {'pairs s':>8} "
        f"{'pair MB':>9} {'peak GB':>8} {'train s':>8}"
    )
    print(header)
    rows: dict[str, list[dict[str, float]]] = {}
    for seed in args.seeds:
        for recipe in args.recipes:
            command = [
                sys.executable,
                __file__,
                "--child",
                recipe,
                str(seed),
                "--data",
                str(args.data),
            ]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            result = json.loads(output.split("RESULT ", 1)[1])
            rows.setdefault(recipe, []).append(result)
            print(
                f"{recipe:<14} {seed:>4} {result['accuracy_at_0.5']:>8.4f} "
                f"{result['accuracy_calibrated']:>8.4f} {result['roc_auc']:>7.4f} "
                f"{result['pair_seconds']:>8.2f} "
                f"{result['pair_bytes'] / 1e6:>9.2f} {result['peak_rss_bytes'] / 1e9:>8.2f} "
                f"{result['train_seconds']:>8.1f}",
                flush=True,
            )
    if "course-recipe" not in rows:
        return
    print("\nmeans, and course-recipe / recipe (higher = ours better)")
    base = {
        key: sum(r[key] for r in rows["course-recipe"]) / len(args.seeds)
        for key in rows["course-recipe"][0]
    }
    for recipe, results in rows.items():
        mean = {key: sum(r[key] for r in results) / len(results) for key in results[0]}
        print(
            f"{recipe:<14} acc@0.5 {mean['accuracy_at_0.5']:.4f}  acc@cal "
            f"{mean['accuracy_calibrated']:.4f}  pairs "
            f"{base['pair_seconds'] / mean['pair_seconds']:.0f}x faster, "
            f"{base['pair_bytes'] / mean['pair_bytes']:.0f}x smaller  peak memory "
            f"{base['peak_rss_bytes'] / mean['peak_rss_bytes']:.1f}x lower  train time "
            f"{mean['train_seconds'] / base['train_seconds']:.2f}x"
        )


if __name__ == "__main__":
    main()
