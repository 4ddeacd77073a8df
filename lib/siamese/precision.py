"""Which number format the siamese base network computes in on this machine.

Kept Keras-free: it only reads the CPU's feature flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

CPU_INFO = Path("/proc/cpuinfo")
# Advanced Matrix Extensions with bfloat16 tiles (Sapphire Rapids and later): the only CPU
# feature on which bfloat16 was measured to pay off (BENCHMARKS.md). avx512_bf16 alone
# (Cooper Lake, Zen 4) has bfloat16 dot products but was never measured, so it gets float32.
FAST_BFLOAT16_FLAG = "amx_bf16"

Precision = Literal["float32", "mixed_bfloat16"]


def resolve_precision(
    requested: Literal["float32", "mixed_bfloat16", "auto"], cpu_info: Path = CPU_INFO
) -> Precision:
    """The format a recipe's `precision` means here: 'auto' becomes one of the other two.

    Args:
        requested: the recipe's `precision`.
        cpu_info: the kernel's CPU description; a missing file (not Linux) means float32.
    """
    if requested != "auto":
        return requested
    return "mixed_bfloat16" if has_fast_bfloat16(cpu_info) else "float32"


def has_fast_bfloat16(cpu_info: Path = CPU_INFO) -> bool:
    """Whether the CPU lists AMX bfloat16 among its flags."""
    try:
        text = cpu_info.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return FAST_BFLOAT16_FLAG in line.split(":", 1)[1].split()
    return False
