"""One lifecycle transition at a time per model, across processes and machines.

A transition reads the registry (the current state, the champion), judges the guards, then
writes tags, aliases and the audit log. Two promotions running that sequence at once could both
find the same champion and both win. The lock makes the sequence atomic:
- PostgreSQL: a transaction-scoped advisory lock, held by every client of that database;
- SQLite (one machine by nature): an exclusive `flock` on a file beside the database. A SQLite
  write lock would not do: MLflow writes to the same file while the lock is held.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


class TransitionLock:
    def __init__(self, database_url: str):
        url = make_url(database_url)
        self._backend = url.get_backend_name()
        if self._backend == "postgresql":
            self._engine = create_engine(database_url, pool_pre_ping=True)
        elif self._backend == "sqlite" and url.database:
            self._lock_file = Path(f"{url.database}.lifecycle.lock")
        else:
            raise ValueError(f"lifecycle lock: unsupported database {database_url!r}; expected PostgreSQL or SQLite")

    @contextmanager
    def hold(self, model: str) -> Iterator[None]:
        """Block until no other transition of `model` runs, then run the body alone."""
        if self._backend == "postgresql":
            key = int.from_bytes(hashlib.sha256(f"demandops:{model}".encode()).digest()[:8], "big", signed=True)
            with self._engine.begin() as connection:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
                yield  # released when the transaction ends
            return
        self._lock_file.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_file.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
