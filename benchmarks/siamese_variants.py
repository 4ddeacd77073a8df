"""Compare siamese recipe variants on validation pairs only: how the default was chosen.

    PYTHONPATH=. .venv/bin/python benchmarks/siamese_variants.py NAME [NAME ...] [--seed 0]

Each variant is a preset plus changes (`VARIANTS`), trained in a fresh child process on the
kept 90 % of the training images of `lib.siamese.protocol.plan_pairs(seed)`, exactly as the
flow and `benchmarks/siamese.py` train. It is scored on the validation pairs (course pairs of
the held-out 10 %) only; the test images are never read. "val acc@cal" is two-fold: the
threshold is calibrated on the even-numbered validation pairs and applied to the odd ones,
and the other way round, so the threshold never sees the pairs it is scored on.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"

# (preset, changes) per variant name, in the order they were tried.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "course": ("course", {}),
    "old-default": (
        "default",
        {
            "conv_filters": (16, 32),
            "downsample": "stride",
            "batch_norm": False,
            "dense_units": (128,),
            "embedding_activation": "relu",
            "learning_rate": 2e-3,
            "epochs": 20,
            "batch_size": 256,
            "pairs": "balanced",
            "pairs_per_epoch": 60_000,
        },
    ),
    "ib-16-32": (
        "default",
        {
            "conv_filters": (16, 32),
            "downsample": "stride",
            "dense_units": (128,),
            "learning_rate": 2e-3,
            "epochs": 20,
            "batch_size": 256,
            "pairs": "in_batch",
            "pairs_per_epoch": None,
        },
    ),
    # The two batch-norm variants ran before `SiameseRecipe` rejected batch_norm with in_batch.
    "ib-32-64-bn-linear": (
        "default",
        {
            "conv_filters": (32, 64),
            "downsample": "stride",
            "batch_norm": True,
            "dense_units": (128,),
            "embedding_activation": "linear",
            "learning_rate": 2e-3,
            "epochs": 20,
            "batch_size": 256,
            "pairs": "in_batch",
            "pairs_per_epoch": None,
        },
    ),
    "ib-32-64": (
        "default",
        {
            "conv_filters": (32, 64),
            "downsample": "stride",
            "dense_units": (128,),
            "learning_rate": 2e-3,
            "epochs": 20,
            "batch_size": 256,
            "pairs": "in_batch",
            "pairs_per_epoch": None,
        },
    ),
    "ib-32-64-l2": (
        "default",
        {
            "conv_filters": (32, 64),
            "downsample": "stride",
            "dense_units": (128,),
            "embedding_activation": "linear",
            "normalize_embedding": True,
            "learning_rate": 2e-3,
            "epochs": 20,
            "batch_size": 256,
            "pairs": "in_batch",
            "pairs_per_epoch": None,
        },
    ),
    "ib-32-64-bn": (
        "default",
        {
            "conv_filters": (32, 64),
            "downsample": "stride",
            "batch_norm": True,
            "dense_units": (128,),
            "learning_rate": 2e-3,
            "epochs": 20,
            "batch_size": 256,
            "pairs": "in_batch",
            "pairs_per_epoch": None,
        },
    ),
    # Issue #11, second round: pooled networks, affordable in bfloat16 on this AMX CPU.
    "ib-32-64-128-pool-bf16": (
        "default",
        {
            "conv_filters": (32, 64, 128),
            "downsample": "pool",
            "precision": "mixed_bfloat16",
            "epochs": 20,
        },
    ),
    "ib-32-64-pool-bf16": (
        "default",
        {
            "conv_filters": (32, 64),
            "downsample": "pool",
            "precision": "mixed_bfloat16",
            "epochs": 20,
        },
    ),
    "ib-32-64-pool-bf16-m2": (
        "default",
        {
            "conv_filters": (32, 64),
            "downsample": "pool",
            "precision": "mixed_bfloat16",
            "epochs": 20,
            "margin": 2.0,
        },
    ),
    # Issue #11, third round: float32 only (bfloat16 costs 1.4-1.75x on CPUs without AMX).
    # Its flip and "same"-padding variants need fields on branch siamese3 (BENCHMARKS.md).
    "ib-32-64-pool": (
        "default",
        {"conv_filters": (32, 64), "downsample": "pool", "epochs": 20},
    ),
    "probe": (
        "default",
        {
            "conv_filters": (16, 32),
            "downsample": "stride",
            "dense_units": (128,),
            "epochs": 2,
            "batch_size": 256,
            "pairs": "in_batch",
            "pairs_per_epoch": None,
        },
    ),
}


def recipe_of(name: str) -> Any:
    from lib.siamese.recipes import PRESETS, SiameseRecipe

    preset, changes = VARIANTS[name]
    return SiameseRecipe.model_validate({**PRESETS[preset].model_dump(), **changes})


def run_variant(name: str, data: Path, seed: int) -> dict[str, float]:
    import numpy as np

    from lib.siamese.evaluate import pair_distances
    from lib.siamese.idx import read_images, read_labels
    from lib.siamese.metrics import calibrate_threshold, classification_metrics, roc_auc
    from lib.siamese.protocol import plan_pairs
    from lib.siamese.train import fit_siamese

    recipe = recipe_of(name)
    images = read_images(data / "train-images-idx3-ubyte.gz")
    labels = read_labels(data / "train-labels-idx1-ubyte.gz")
    # plan_pairs also draws test pairs; it gets stand-in test labels, so no test file is read.
    plan = plan_pairs(labels, np.tile(np.arange(10, dtype=labels.dtype), 3), seed)
    # CPU time of all threads: unlike wall time, it does not grow while other jobs run.
    cpu_start = time.process_time()
    with tempfile.TemporaryDirectory() as scratch:
        model, result = fit_siamese(
            recipe,
            images,
            labels,
            plan.kept,
            plan.validation,
            seed=seed,
            backup=Path(scratch) / "backup",
        )
    train_cpu_seconds = time.process_time() - cpu_start
    validation = plan.validation
    distances = pair_distances(model, images, validation)
    # Course pairs alternate positive, negative: halves take whole (positive, negative) couples.
    couple = np.arange(len(validation)) // 2
    halves = (couple % 2 == 0, couple % 2 == 1)
    cross = []
    for calibrate_on, score_on in (halves, halves[::-1]):
        threshold = calibrate_threshold(validation.label[calibrate_on], distances[calibrate_on])
        scored = classification_metrics(validation.label[score_on], distances[score_on], threshold)
        cross.append(scored["accuracy"])
    return {
        "val_acc_0.5": classification_metrics(validation.label, distances, 0.5)["accuracy"],
        "val_acc_cal": float(np.mean(cross)),
        "val_auc": roc_auc(validation.label, -distances),
        "epochs_run": float(result.epochs_run),
        "train_seconds": result.seconds,
        "train_cpu_seconds": train_cpu_seconds,
    }


def child(name: str, seed: int, data: Path) -> None:
    from lib.core.malloc import cap_arenas

    cap_arenas()
    result = run_variant(name, data, seed)
    result["peak_rss_bytes"] = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="+", choices=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.names[0], args.seed, args.data)
        return
    print(
        f"{'variant':<22} {'seed':>4} {'val@0.5':>8} {'val@cal':>8} {'val AUC':>8} "
        f"{'epochs':>6} {'train s':>8} {'cpu s':>7} {'peak GB':>8} {'load':>5}"
    )
    for name in args.names:
        command = [sys.executable, __file__, name, "--child", "--seed", str(args.seed)]
        command += ["--data", str(args.data)]
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode:
            sys.exit(f"{name} failed:\n{run.stderr[-3000:]}")
        r = json.loads(run.stdout.split("RESULT ", 1)[1])
        load = os.getloadavg()[0]
        print(
            f"{name:<22} {args.seed:>4} {r['val_acc_0.5']:>8.4f} {r['val_acc_cal']:>8.4f} "
            f"{r['val_auc']:>8.4f} {r['epochs_run']:>6.0f} {r['train_seconds']:>8.1f} "
            f"{r['train_cpu_seconds']:>7.0f} "
            f"{r['peak_rss_bytes'] / 1e9:>8.2f} {load:>5.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
