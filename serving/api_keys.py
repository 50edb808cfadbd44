"""API keys of the forecast service: created, listed and revoked by `demandops keys`, read by the gateway.

Keys live in the profile's database, beside the lifecycle audit log (SQLite locally, PostgreSQL in
production). A key is `dmo_` and 43 random URL-safe characters (256 bits), shown once when it is
created; the table keeps its SHA-256 digest and its first characters, to recognise it in a list.
A fast digest is enough for a random secret of that length (there is no dictionary to try), and it
lets the gateway find a key with one dictionary lookup. Revoking keeps the row, with the time.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, insert, select, update

from demandops.errors import DemandopsError

KEY_PREFIX = "dmo_"
SHOWN_CHARACTERS = 8  # of the key, after its prefix: enough to tell keys apart in a list, useless alone

_metadata = MetaData()
keys_table = Table(
    "demandops_api_keys",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("shown", String(32), nullable=False),
    Column("rate_per_s", Integer, nullable=True),
    Column("daily_quota", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


class ApiKeyError(DemandopsError):
    """A key command that cannot be carried out (a name taken, a key unknown or already revoked)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    shown: str  # the key's first characters, e.g. dmo_3fGx9a1Q...
    rate_per_s: int | None  # None: no rate limit
    daily_quota: int | None  # None: no quota
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    def __init__(self, database_url: str):
        self._engine = create_engine(database_url)
        _metadata.create_all(self._engine, tables=[keys_table])

    def create(self, name: str, *, rate_per_s: int | None = None, daily_quota: int | None = None) -> tuple[ApiKey, str]:
        """A new key and its plaintext, which is not stored and cannot be shown again."""
        if not name.strip():
            raise ApiKeyError("a key needs a name (who uses it), e.g. --name replenishment-eu")
        if any(key.name == name for key in self.list()):
            raise ApiKeyError(f"a key named {name!r} exists already (names stay taken after a revocation)")
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        row = {
            "name": name,
            "digest": digest_of(plaintext),
            "shown": plaintext[: len(KEY_PREFIX) + SHOWN_CHARACTERS] + "...",
            "rate_per_s": rate_per_s,
            "daily_quota": daily_quota,
            "created_at": datetime.now(UTC),
            "revoked_at": None,
        }
        with self._engine.begin() as conn:
            conn.execute(insert(keys_table).values(**row))
        return _key(row), plaintext

    def list(self) -> list[ApiKey]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(keys_table).order_by(keys_table.c.id)).mappings().all()
        return [_key(row) for row in rows]

    def by_digest(self) -> dict[str, ApiKey]:
        """Every key, revoked ones included (a revoked key is refused with 403, not 401), by digest."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(keys_table)).mappings().all()
        return {row["digest"]: _key(row) for row in rows}

    def revoke(self, name: str) -> ApiKey:
        with self._engine.begin() as conn:
            row = conn.execute(select(keys_table).where(keys_table.c.name == name)).mappings().first()
            if row is None:
                raise ApiKeyError(f"no key is named {name!r}; `demandops keys list` shows the names")
            if row["revoked_at"] is not None:
                raise ApiKeyError(f"the key {name!r} was revoked already, at {row['revoked_at']:%Y-%m-%d %H:%M:%S}")
            now = datetime.now(UTC)
            conn.execute(update(keys_table).where(keys_table.c.name == name).values(revoked_at=now))
        return _key({**row, "revoked_at": now})


def _key(row) -> ApiKey:
    return ApiKey(
        name=row["name"],
        shown=row["shown"],
        rate_per_s=row["rate_per_s"],
        daily_quota=row["daily_quota"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
