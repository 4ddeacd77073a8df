"""TensorFlow's native start-up banner stays off stderr; everything else written there stays."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lib.core.quiet import is_banner, native_stderr_filtered
from tests.fixtures.fresh_process import REPO_ROOT

BANNER = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1795796612.783468   21345 port.cc:153] oneDNN custom operations are on.\n",
    b"I0000 00:00:1795796612.783784   21345 cudart_stub.cc:31] Could not find cuda drivers\n",
    b"I0000 00:00:1795796573.306405   19647 cpu_feature_guard.cc:227] This TensorFlow binary\n",
    b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild\n",
]
KEPT = [
    b"E0000 00:00:1795796616.773724   21345 cuda_platform.cc:52] failed call to cuInit\n",
    b"Traceback (most recent call last):\n",
    b"ImportError: libcudart.so.12: cannot open shared object file\n",
]


@pytest.mark.parametrize("line", BANNER)
def test_banner_lines_are_recognised(line: bytes) -> None:
    assert is_banner(line)


@pytest.mark.parametrize("line", KEPT)
def test_errors_and_python_output_are_not_banner(line: bytes) -> None:
    assert not is_banner(line)


def test_filter_replays_what_is_not_banner(capfd: pytest.CaptureFixture[str]) -> None:
    with native_stderr_filtered():
        os.write(2, BANNER[1] + b"a real problem\n" + BANNER[0])
        print("from Python", file=sys.stderr)
    # (capfd swaps sys.stderr for its own file, so the two arrive in either order)
    assert sorted(capfd.readouterr().err.splitlines()) == ["a real problem", "from Python"]


def test_importing_keras_after_the_hook_prints_no_banner() -> None:
    script = (
        "from lib.core.quiet import quiet_tensorflow_import\n"
        "assert quiet_tensorflow_import()\n"
        "import keras, numpy\n"
        "keras.ops.convert_to_numpy(keras.ops.ones((2,)) + 1)\n"
        "assert not quiet_tensorflow_import()  # too late now, and says so\n"
        "print('done')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert result.stderr == ""
