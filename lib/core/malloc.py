"""Cap glibc's malloc arenas, so a TensorFlow process reuses the memory it frees.

glibc gives each thread that allocates its own heap arena, up to 8 per core, and a block
freed into one arena is only reused by threads allocating from that arena. TensorFlow trains
on ~20 threads that allocate and free batch-sized buffers in turn, so freed memory piles up as
fragments spread over many arenas. Training the siamese default preset on real Fashion-MNIST
(20 epochs, seed 0), the process's resident memory grew by 50-80 MB an epoch in the first
epochs and peaked at 1.27 GB; with the arenas capped at 2 before the model was built, the
benchmark's whole process peaked at 1.01 GB (1.13 GB when capped only after the model had
started TensorFlow's thread pools, and with them 7 arenas).

A lower mmap threshold would also return big buffers, but every large tensor then costs an
mmap, page faults and an munmap: it slowed training about 2x on this 2-core machine.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# mallopt parameter number, from glibc's <malloc.h>.
M_ARENA_MAX = -8
# Two arenas: the main one and one shared by all other threads. Contention for an arena lock
# costs little next to a training step: a 3-epoch probe used no more CPU time (43 s vs 49 s).
MAX_ARENAS = 2


@functools.cache
def cap_arenas(max_arenas: int = MAX_ARENAS) -> bool:
    """Let glibc create at most `max_arenas` heap arenas from now on in this process.

    Arenas already created stay (threads keep using them), so call it before TensorFlow
    starts its thread pools, which it does when the first model is built. Later calls are
    cached no-ops.

    Returns:
        True when glibc accepted the setting; False where malloc is not glibc's (musl,
        macOS, Windows), which leaves the process as it was.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "gnu_get_libc_version"):
        return False
    return bool(libc.mallopt(M_ARENA_MAX, max_arenas))
