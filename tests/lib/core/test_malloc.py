"""glibc's heap arenas: capped by `cap_arenas`, so threads share the memory they free."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

# In a fresh process (the cap is process-wide and existing arenas stay): six threads each
# allocate while the others hold their blocks, then glibc's malloc_info XML is counted for
# its heaps (one per arena).
CHILD = """
import ctypes, sys, tempfile, threading
from pathlib import Path
from lib.core.malloc import cap_arenas

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.fopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
accepted = cap_arenas() if sys.argv[1] == "capped" else None
together = threading.Barrier(7)

def allocate():
    block = libc.malloc(1000)
    together.wait()
    libc.free(block)

threads = [threading.Thread(target=allocate) for _ in range(6)]
for thread in threads:
    thread.start()
together.wait()
for thread in threads:
    thread.join()
report = Path(tempfile.mkdtemp()) / "malloc.xml"
handle = libc.fopen(str(report).encode(), b"w")
libc.malloc_info(0, handle)
libc.fclose(handle)
print(accepted, report.read_text().count("<heap nr="))
"""


def _arenas_after_six_threads(mode: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_capped_arenas_are_shared_by_all_threads() -> None:
    assert _arenas_after_six_threads("default") == "None 7"  # main + one per thread
    assert _arenas_after_six_threads("capped") == "True 2"
