"""The SQL of a batch submit: the jobs its items may repeat, found in a few queries, and its rows in one INSERT."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from store.models import JobRecord

_CHUNK = 500  # values per IN list: far below every backend's limit of bound parameters


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def jobs_by_idempotency_key(session: Session, client_name: str, keys: Sequence[str]) -> dict[str, JobRecord]:
    """The client's jobs submitted with any of these Idempotency-Keys, by key."""
    found: dict[str, JobRecord] = {}
    for chunk in _chunks(sorted(set(keys))):
        query = select(JobRecord).where(JobRecord.client_name == client_name, JobRecord.idempotency_key.in_(chunk))
        found |= {job.idempotency_key: job for job in session.scalars(query) if job.idempotency_key}
    return found


def jobs_by_active_key(session: Session, active_keys: Sequence[str]) -> dict[str, JobRecord]:
    """The active jobs holding any of these active keys (one client, code and product each), by key."""
    found: dict[str, JobRecord] = {}
    for chunk in _chunks(sorted(set(active_keys))):
        query = select(JobRecord).where(JobRecord.active_key.in_(chunk))
        found |= {job.active_key: job for job in session.scalars(query) if job.active_key}
    return found


def insert_jobs(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert new job rows (every row with the same columns) in one executemany; the caller commits.

    Raises IntegrityError when a concurrent submit took one of their idempotency or active keys first.
    """
    if rows:
        session.execute(insert(JobRecord.__table__), rows)
