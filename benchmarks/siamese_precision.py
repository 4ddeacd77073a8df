"""Training-step cost of siamese base networks in float32 and bfloat16, per CPU feature level.

    PYTHONPATH=. .venv/bin/python benchmarks/siamese_precision.py [--steps 20]

Why: bfloat16 pays only where the CPU multiplies bfloat16 natively (AMX tiles); elsewhere
TensorFlow emulates it. One machine cannot swap its CPU, so each run caps the instruction set
oneDNN may use (`ONEDNN_MAX_CPU_ISA`, read once when TensorFlow starts, hence one child
process per row): `AVX512_CORE_AMX` is this Sapphire Rapids CPU as it is, `AVX512_CORE_BF16`
a CPU with bfloat16 dot products but no AMX (Cooper Lake, Zen 4), `AVX512_CORE` one without
either (Skylake-SP, Ice Lake). A cap only stands in for such a CPU: clock, cores and caches
stay this machine's.

Each row times `--steps` in-batch training steps (`InBatchTrainer`: 256 images embedded once,
all their pairs scored) after one warm-up epoch, as `fit` runs them in the flow. "ms/step"
is wall time; "cpu ms/step" is the process's CPU time (all threads), which other jobs on a
shared machine inflate less. Random pixels: the cost does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BATCH = 256
# (name, changes to the default preset); every row is in-batch, as the default trains.
NETWORKS: dict[str, dict[str, Any]] = {
    "conv 32/64 stride": {"conv_filters": (32, 64), "downsample": "stride"},
    "conv 32/64 pool": {"conv_filters": (32, 64), "downsample": "pool"},
    "conv 32/64/128 pool": {"conv_filters": (32, 64, 128), "downsample": "pool"},
}
PRECISIONS = ("float32", "mixed_bfloat16")
ISA_CAPS = ("AVX512_CORE_AMX", "AVX512_CORE_BF16", "AVX512_CORE")


def child(network: str, precision: str, steps: int) -> None:
    import numpy as np

    from lib.siamese.model import trainable_model
    from lib.siamese.recipes import PRESETS

    changes = {**NETWORKS[network], "precision": precision}
    recipe = PRESETS["default"].model_copy(update=changes)
    n_images = BATCH * steps
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n_images, 28, 28)).astype("float32")
    classes = rng.integers(0, 10, size=n_images).astype("int32")
    _, trainer = trainable_model(recipe, n_images)
    trainer.fit(images[:BATCH], classes[:BATCH], batch_size=BATCH, epochs=1, verbose=0)
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.fit(images, classes, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print("RESULT " + json.dumps({"ms": 1000 * wall / steps, "cpu_ms": 1000 * cpu / steps}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS), default=list(NETWORKS))
    parser.add_argument("--isa", nargs="+", choices=ISA_CAPS, default=list(ISA_CAPS))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.steps)
        return
    print(
        f"{'network':<20} {'oneDNN ISA cap':<17} {'precision':<15} {'ms/step':>8} "
        f"{'cpu ms/step':>11} {'load':>5}"
    )
    for network in args.networks:
        for isa in args.isa:
            for precision in PRECISIONS:
                command = [sys.executable, __file__, "--steps", str(args.steps)]
                command += ["--child", network, precision]
                env = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa}
                run = subprocess.run(command, capture_output=True, text=True, env=env)
                if run.returncode:
                    sys.exit(f"{network} {isa} {precision} failed:\n{run.stderr[-3000:]}")
                r = json.loads(run.stdout.split("RESULT ", 1)[1])
                print(
                    f"{network:<20} {isa:<17} {precision:<15} {r['ms']:>8.1f} "
                    f"{r['cpu_ms']:>11.1f} {os.getloadavg()[0]:>5.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
