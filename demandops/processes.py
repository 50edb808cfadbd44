"""Which process owns a piece of work, and whether it is still alive: how interrupted work is found.

A run, a training job or a model version records its owner as host, pid and the process's start
time. The start time guards against a recycled pid: a new process with the same pid started later.
Work owned on another host cannot be judged from here and counts as alive.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import psutil

# Start times agree to the clock tick; this absorbs float rounding through a text tag.
SAME_START_S = 0.5


@dataclass(frozen=True)
class ProcessIdentity:
    host: str
    pid: int
    started: float  # seconds since the epoch, as the kernel reports it

    @classmethod
    def current(cls) -> ProcessIdentity:
        return cls(socket.gethostname(), os.getpid(), psutil.Process().create_time())

    def to_tags(self, prefix: str) -> dict[str, str]:
        return {f"{prefix}host": self.host, f"{prefix}pid": str(self.pid), f"{prefix}started": f"{self.started:.3f}"}

    @classmethod
    def from_tags(cls, tags: dict[str, str], prefix: str) -> ProcessIdentity | None:
        """The identity recorded under prefix; None when the tags hold none (work from before, or elsewhere)."""
        try:
            return cls(tags[f"{prefix}host"], int(tags[f"{prefix}pid"]), float(tags[f"{prefix}started"]))
        except (KeyError, ValueError):
            return None

    def alive(self) -> bool:
        """False only when this host's process with that pid and start time is gone."""
        if self.host != socket.gethostname():
            return True
        try:
            process = psutil.Process(self.pid)
            same = abs(process.create_time() - self.started) < SAME_START_S
            return same and process.status() != psutil.STATUS_ZOMBIE  # a zombie has ended, unreaped
        except psutil.NoSuchProcess:  # ZombieProcess included
            return False

    def describe(self) -> str:
        return f"process {self.pid} on {self.host}"
