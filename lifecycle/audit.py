"""Append-only audit log of lifecycle transitions, in the same database as the MLflow backend."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, create_engine, insert, select

_metadata = MetaData()
audit_table = Table(
    "demandops_lifecycle_audit",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(256), nullable=False),
    Column("version", String(32), nullable=False),
    Column("from_state", String(32), nullable=False),
    Column("to_state", String(32), nullable=False),
    Column("outcome", String(16), nullable=False),  # "applied" or "refused"
    Column("actor", String(256), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("evidence", Text, nullable=False),
)


@dataclass(frozen=True)
class AuditEntry:
    model: str
    version: str
    from_state: str
    to_state: str
    outcome: str
    actor: str
    at: datetime
    reason: str
    evidence: dict[str, Any]


class AuditLog:
    """Entries are only ever inserted; nothing updates or deletes them."""

    def __init__(self, database_url: str):
        self._engine = create_engine(database_url)
        _metadata.create_all(self._engine, tables=[audit_table])

    def append(
        self,
        *,
        model: str,
        version: str,
        from_state: str,
        to_state: str,
        outcome: str,
        actor: str,
        reason: str,
        evidence: dict[str, Any],
    ) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                insert(audit_table).values(
                    model=model,
                    version=version,
                    from_state=from_state,
                    to_state=to_state,
                    outcome=outcome,
                    actor=actor,
                    at=datetime.now(UTC),
                    reason=reason,
                    evidence=json.dumps(evidence, default=str),
                )
            )

    def history(self, model: str) -> list[AuditEntry]:
        query = select(audit_table).where(audit_table.c.model == model).order_by(audit_table.c.id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            AuditEntry(
                **{k: v for k, v in row.items() if k not in ("id", "evidence")},
                evidence=json.loads(row["evidence"]),
            )
            for row in rows
        ]
