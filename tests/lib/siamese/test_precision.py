"""Which number format 'auto' precision picks, from the CPU's flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.siamese.precision import resolve_precision

SAPPHIRE_RAPIDS = "flags\t\t: fpu sse2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
ZEN_4 = "flags\t\t: fpu sse2 avx512f avx512_bf16\n"


@pytest.mark.parametrize(
    ("cpu_info", "expected"),
    [
        (f"processor\t: 0\n{SAPPHIRE_RAPIDS}\nprocessor\t: 1\n{SAPPHIRE_RAPIDS}", "mixed_bfloat16"),
        (f"processor\t: 0\n{ZEN_4}", "float32"),  # bfloat16 dot products, no AMX: unmeasured
        ("processor\t: 0\nflags\t\t: fpu sse2 avx2\n", "float32"),
        ("", "float32"),
    ],
)
def test_auto_picks_bfloat16_only_on_cpus_with_amx(
    tmp_path: Path, cpu_info: str, expected: str
) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(cpu_info)
    assert resolve_precision("auto", path) == expected


def test_auto_means_float32_where_the_cpu_is_not_described(tmp_path: Path) -> None:
    assert resolve_precision("auto", tmp_path / "missing") == "float32"


@pytest.mark.parametrize("requested", ["float32", "mixed_bfloat16"])
def test_an_explicit_precision_is_kept_on_any_cpu(tmp_path: Path, requested: str) -> None:
    assert resolve_precision(requested, tmp_path / "missing") == requested  # type: ignore[arg-type]
