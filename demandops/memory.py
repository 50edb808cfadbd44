"""Handing freed memory back to the operating system between the stages of one run.

The chain runs its steps in one process. glibc keeps the heap a step freed for later reuse, so a
step that peaked at several GB leaves the process that large while the training job, another
process, needs the memory. malloc_trim(0) returns the free pages; elsewhere (macOS, musl) there is
nothing to call, and nothing is done.

Arrow, which reads every Parquet file, keeps its own pool (mimalloc or jemalloc) and holds what it
freed as well: reading three 1M-row parts of a training set and dropping them left 1.1 GB that
only the pool's release_unused gave back. At 25,000 series such retained reads took the run's
process past 8 GB in the backtest (bench/README.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc


def release_free_memory() -> bool:
    """Collect garbage and return the free heap and Arrow's free pool to the system; whether the C
    library could."""
    gc.collect()
    release_arrow_pool()
    trim = _malloc_trim()
    return bool(trim(0)) if trim else False


def release_arrow_pool() -> None:
    """Return the memory Arrow's pool holds unused to the system (after a large read)."""
    import pyarrow  # imported here: the kernel does not need it otherwise

    pyarrow.default_memory_pool().release_unused()


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, looked up once (find_library runs ldconfig); None where there is none."""
    name = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
