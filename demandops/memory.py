"""Handing freed memory back to the operating system between the stages of one run.

The chain runs its steps in one process. glibc keeps the heap a step freed for later reuse, so a
step that peaked at several GB leaves the process that large while the training job, another
process, needs the memory. malloc_trim(0) returns the free pages; elsewhere (macOS, musl) there is
nothing to call, and nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc


def release_free_memory() -> bool:
    """Collect garbage and return the free heap to the system; whether the C library could."""
    gc.collect()
    trim = _malloc_trim()
    return bool(trim(0)) if trim else False


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, looked up once (find_library runs ldconfig); None where there is none."""
    name = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
