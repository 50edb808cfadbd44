"""Files written whole or not at all: a crash (kill -9, a full disk) mid-write leaves the previous
version in place, never half a file that a later run would fail to read."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomically(target: Path, write: Callable[[Path], object]) -> Path:
    """Call write(partial) on a hidden file beside target, then rename it over target (atomic on POSIX)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        write(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def write_text_atomically(target: Path, text: str) -> Path:
    return write_atomically(target, lambda partial: partial.write_text(text))
