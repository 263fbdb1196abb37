"""Host memory: let glibc's malloc keep freed blocks for reuse instead of unmapping them.

Every training step allocates and frees the same few megabytes (activations, gradients,
packed weights). glibc serves blocks over its mmap threshold (128 KiB, raised only as blocks
are freed) with fresh pages from the kernel and returns them on free, so the next step
faults them all in again, zero-filled: on the 2-core test machine about 200 page faults a
batch, and the book's loop settled at random into a mode 30% slower than its best. With
freed memory kept, both paths ran at their best every time (bench/throughput.py; PyTorch's
CPU tuning guide recommends a caching allocator such as jemalloc for the same reason).
The cost: the process keeps its peak heap instead of shrinking after it.
"""

from __future__ import annotations

import ctypes
import functools
import platform

M_TRIM_THRESHOLD = -1   # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20   # the largest glibc accepts on 64-bit; bigger blocks still mmap
TRIM_THRESHOLD = 1 << 30      # keep up to 1 GiB of free heap rather than give it back


@functools.cache
def reuse_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse (once per process).

    True if it was set; False where the C library is not glibc (macOS, musl, Windows), which
    keep their own policies.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
