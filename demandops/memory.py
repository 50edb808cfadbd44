"""Handing freed memory back to the operating system between the stages of one run.

The chain runs its steps in one process. glibc keeps the heap a step freed for later reuse, so a
step that peaked at several GB leaves the process that large while the training job, another
process, needs the memory. malloc_trim(0) returns the free pages; elsewhere (macOS, musl) there is
nothing to call, and nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc


def release_free_memory() -> bool:
    """Collect garbage and return the free heap to the system; whether the C library could."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if not name:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "malloc_trim"):
        return False
    return bool(libc.malloc_trim(0))
