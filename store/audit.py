"""The audit trail: one row per state-changing call (API or CLI), newest first by id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from store.models import AuditEvent, utcnow


@dataclass(frozen=True)
class Entry:
    """What one audit row says: who did what to which job, when and from where."""

    client_name: str
    action: str
    job_id: str | None = None
    source: str | None = None
    request_id: str | None = None
    status: int | None = None
    detail: dict[str, Any] | None = None
    at: datetime = field(default_factory=utcnow)


_INSERT = insert(AuditEvent.__table__)


def add(session: Session, entry: Entry) -> None:
    """Insert one audit row in the session's transaction (written with whatever the caller commits).

    A Core INSERT on the session's connection: a submit pays ~0.04 ms for it, where the ORM's unit of work
    took ~0.2 ms.
    """
    session.connection().execute(_INSERT, {
        "at": entry.at, "client_name": entry.client_name[:100], "action": entry.action[:64],
        "job_id": entry.job_id[:64] if entry.job_id else None, "source": entry.source[:255] if entry.source else None,
        "request_id": entry.request_id, "status": entry.status, "detail": entry.detail,
    })


def record(session: Session, entry: Entry) -> None:
    """Insert and commit one audit row."""
    add(session, entry)
    session.commit()


def list_events(
    session: Session,
    *,
    client_name: str | None = None,
    action: str | None = None,
    job_id: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> Sequence[AuditEvent]:
    """Audit rows newest first; `before_id` is the id of the last row of the previous page."""
    query = select(AuditEvent)
    if client_name:
        query = query.where(AuditEvent.client_name == client_name)
    if action:
        query = query.where(AuditEvent.action == action)
    if job_id:
        query = query.where(AuditEvent.job_id == job_id)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)).all()
