"""Queries and state changes of jobs. Plain functions that take a Session, or for the per-job
statements (claim, final state) the Connection whose transaction they run in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models import (
    ACTIVE_STATES,
    CANCELLED,
    COMPLETED,
    FAILED,
    FINAL_STATES,
    PROCESSING,
    QUEUED,
    SCHEDULED,
    JobRecord,
    utcnow,
)

# The per-job statements (submit, claim, final state) are Core statements on the table, built once
# with bound parameters; the rows they write or return become JobRecords in no session (`_detached`).
_JOBS = JobRecord.__table__
_J = _JOBS.c


def _detached(columns: Mapping[str, Any]) -> JobRecord:
    """A JobRecord (in no session) holding every column: a RETURNING row's mapping, or a new row's values."""
    return JobRecord(**columns)


class DuplicateJobError(Exception):
    """A job with the same idempotency key or active code + product exists already."""

    def __init__(self, existing: JobRecord, reason: str):
        self.existing = existing
        self.reason = reason
        super().__init__(reason)


def active_key_for(client_name: str, code: str, product_id: str) -> str:
    """The key that allows one active job per client, code and product."""
    return f"{client_name}\x1f{code}\x1f{product_id}"


# No RETURNING: every value of a new row is known here.
_INSERT = insert(_JOBS)


def create_job(session: Session, values: dict[str, Any]) -> JobRecord:
    """Insert and commit a new job from its column values; raise DuplicateJobError with the existing one
    instead of a second (same Idempotency-Key, or an active job with the same code and product).

    The INSERT runs in the session's transaction, on its one connection (a second pooled connection
    taken while the session holds one can starve the pool under concurrent submits); the session
    reads the existing job on a duplicate.
    """
    values = {**values, "active_key": active_key_for(values["client_name"], values["code"], values["product_id"])}
    try:
        return _insert_committed(session, values)
    except IntegrityError:
        session.rollback()
    existing = _find_duplicate(session, values)
    if existing is None:  # the other job ended between our insert and this read: try once more
        return _insert_committed(session, values)
    return _raise_duplicate(existing, values.get("idempotency_key"))


def _insert_committed(session: Session, values: dict[str, Any]) -> JobRecord:
    row = _with_defaults(values)
    session.execute(_INSERT, row)
    session.commit()
    return _detached(row)


def _with_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """Every column of a new row: the given values, the columns' own defaults, None for the rest."""
    row = dict(values)
    for column in _JOBS.columns:
        if column.key not in row:
            default = column.default
            row[column.key] = None if default is None else default.arg if default.is_scalar else default.arg(None)
    return row


def _find_duplicate(session: Session, values: dict[str, Any]) -> JobRecord | None:
    if values.get("idempotency_key"):
        found = find_by_idempotency_key(session, values["client_name"], values["idempotency_key"])
        if found is not None:
            return found
    return session.scalar(select(JobRecord).where(JobRecord.active_key == values["active_key"]))


def _raise_duplicate(existing: JobRecord, idempotency_key: str | None) -> JobRecord:
    if idempotency_key and existing.idempotency_key == idempotency_key:
        raise DuplicateJobError(existing, "idempotency_key")
    raise DuplicateJobError(existing, "active")


def find_by_idempotency_key(session: Session, client_name: str, key: str) -> JobRecord | None:
    """The job a client submitted with this Idempotency-Key, if any."""
    return session.scalar(
        select(JobRecord).where(JobRecord.client_name == client_name, JobRecord.idempotency_key == key)
    )


def get_job(session: Session, job_id: str) -> JobRecord | None:
    """The job with this id, or None."""
    return session.get(JobRecord, job_id)


def get_client_job(session: Session, job_id: str, client_name: str, *, admin: bool = False) -> JobRecord | None:
    """The job if it belongs to the client (or the client is admin); None otherwise."""
    job = session.get(JobRecord, job_id)
    if job is None or (job.client_name != client_name and not admin):
        return None
    return job


# Built once with bound parameters: building an UPDATE with literal values costs more CPU than running it.
_CLAIM = (
    update(_JOBS)
    .where(_J.job_id == bindparam("p_job_id"), _J.status == QUEUED)
    .values(status=PROCESSING, started_at=bindparam("p_now"), attempts=_J.attempts + 1, progress=0,
            phase="started", updated_at=bindparam("p_now"))
    .returning(*_J)
)


def mark_started(connection: Connection, job_id: str) -> JobRecord | None:
    """Claim a queued job for this worker (processing, attempt counted); None if it is not queued.

    The conditional UPDATE makes the claim atomic: a job handed to RQ twice (reconciler, RQ's own
    abandoned-job retry) runs once, and a cancelled or finished job never runs. RETURNING loads the
    row in the same statement (one round trip, no second SELECT).
    """
    row = connection.execute(_CLAIM, {"p_job_id": job_id, "p_now": utcnow()}).mappings().first()
    return _detached(row) if row is not None else None


def set_progress(session: Session, job_id: str, progress: int, phase: str) -> None:
    """Store progress (0-100) and the phase message of a running job."""
    session.execute(
        update(JobRecord)
        .where(JobRecord.job_id == job_id, JobRecord.status == PROCESSING)
        .values(progress=progress, phase=phase, updated_at=utcnow())
    )
    session.commit()


def mark_retrying(
    session: Session, job_id: str, error: str, retry_at: datetime | None, *, phase: str = "retrying"
) -> None:
    """Record a failed attempt that will run again; `phase` says what happens next."""
    phase = f"{phase} at {retry_at.isoformat()}" if retry_at else phase
    session.execute(
        update(JobRecord)
        .where(JobRecord.job_id == job_id, JobRecord.status.not_in(FINAL_STATES))
        .values(
            status=QUEUED,
            retry_count=JobRecord.retry_count + 1,
            error_message=error,
            phase=phase,
            progress=0,
        )
    )
    session.commit()


def finish_job(connection: Connection, job_id: str, status: str, *, error: str | None = None,
               **fields: Any) -> JobRecord | None:
    """Set a final state unless the job has one already; the updated job, or None (not committed).

    One conditional UPDATE ... RETURNING: it takes the row lock on PostgreSQL and decides "not final
    yet" atomically, so the caller can add the outbox rows to the same transaction.
    """
    if status not in FINAL_STATES:
        raise ValueError(f"{status!r} is not a final state")
    now = utcnow()
    values: dict[str, Any] = {
        "status": status, "active_key": None, "completed_at": now, "updated_at": now,
        "error_message": error, "phase": status, **fields,
    }
    if status == COMPLETED:
        values["progress"] = 100
    statement = _finish_statement(tuple(sorted(values)))
    parameters = {f"v_{name}": value for name, value in values.items()}
    row = connection.execute(statement, {"p_job_id": job_id, **parameters}).mappings().first()
    return _detached(row) if row is not None else None


# Plain comparisons, not NOT IN: an IN list is an "expanding" parameter that SQLAlchemy rewrites into
# the SQL at every execution.
_NOT_FINAL = and_(*(_J.status != state for state in sorted(FINAL_STATES)))


@cache
def _finish_statement(names: tuple[str, ...]) -> Any:
    """The final-state UPDATE setting these columns from `v_<name>` parameters (one per set of fields)."""
    return (
        update(_JOBS)
        .where(_J.job_id == bindparam("p_job_id"), _NOT_FINAL)
        .values({name: bindparam(f"v_{name}") for name in names})
        .returning(*_J)
    )


def lock_job(session: Session, job_id: str) -> JobRecord | None:
    """Load a job for update (row lock on PostgreSQL; SQLite serialises writers anyway)."""
    return session.get(JobRecord, job_id, with_for_update=True, populate_existing=True)


def list_jobs(
    session: Session,
    *,
    client_name: str | None,
    status: str | None = None,
    product_id: str | None = None,
    code: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    cursor: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> Sequence[JobRecord]:
    """Jobs newest first; `cursor` is the (created_at, job_id) of the last job of the previous page."""
    query = select(JobRecord)
    if client_name is not None:
        query = query.where(JobRecord.client_name == client_name)
    if status:
        query = query.where(JobRecord.status == status)
    if product_id:
        query = query.where(JobRecord.product_id == product_id)
    if code:
        query = query.where(JobRecord.code == code)
    if created_after:
        query = query.where(JobRecord.created_at >= created_after)
    if created_before:
        query = query.where(JobRecord.created_at < created_before)
    if cursor:
        created, job_id = cursor
        query = query.where(
            (JobRecord.created_at < created) | ((JobRecord.created_at == created) & (JobRecord.job_id < job_id))
        )
    query = query.order_by(JobRecord.created_at.desc(), JobRecord.job_id.desc()).limit(limit)
    return session.scalars(query).all()


__all__ = [
    "ACTIVE_STATES",
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "PROCESSING",
    "QUEUED",
    "SCHEDULED",
    "DuplicateJobError",
]


def claim_due_scheduled(session: Session, now: datetime, *, limit: int = 200) -> list[JobRecord]:
    """Move scheduled jobs whose run_at has come to queued; returns the ones this caller moved.

    The conditional UPDATE makes it safe for several schedulers to run at once.
    """
    due = session.scalars(
        select(JobRecord.job_id)
        .where(JobRecord.status == SCHEDULED, JobRecord.run_at <= now)
        .order_by(JobRecord.run_at)
        .limit(limit)
    ).all()
    claimed = []
    for job_id in due:
        result = session.execute(
            update(JobRecord)
            .where(JobRecord.job_id == job_id, JobRecord.status == SCHEDULED)
            .values(status=QUEUED, phase="queued", updated_at=now)
        )
        if result.rowcount == 1:
            claimed.append(job_id)
    session.commit()
    return [job for job_id in claimed if (job := session.get(JobRecord, job_id)) is not None]


def stale_jobs(
    session: Session, status: str, older_than: datetime, *, after: tuple[datetime, str] | None = None,
    limit: int = 500,
) -> Sequence[JobRecord]:
    """Jobs in `status` not updated since `older_than`, oldest first, from keyset position `after`."""
    query = select(JobRecord).where(JobRecord.status == status, JobRecord.updated_at < older_than)
    if after is not None:
        updated, job_id = after
        query = query.where(
            (JobRecord.updated_at > updated) | ((JobRecord.updated_at == updated) & (JobRecord.job_id > job_id))
        )
    query = query.order_by(JobRecord.updated_at, JobRecord.job_id).limit(limit)
    return session.scalars(query).all()


def queued_among(session: Session, job_ids: Sequence[str]) -> list[str]:
    """Those of `job_ids` whose job is queued."""
    if not job_ids:
        return []
    return list(session.scalars(select(_J.job_id).where(_J.job_id.in_(list(job_ids)), _J.status == QUEUED)))


def requeue_orphan(session: Session, job: JobRecord, reason: str) -> bool:
    """Move a processing job whose worker died back to queued (counted as a retry); False if it moved on."""
    result = session.execute(
        update(JobRecord)
        .where(JobRecord.job_id == job.job_id, JobRecord.status == PROCESSING,
               JobRecord.updated_at == job.updated_at)
        .values(status=QUEUED, retry_count=JobRecord.retry_count + 1, error_message=reason,
                phase="re-queued by reconciler", progress=0, updated_at=utcnow())
    )
    session.commit()
    return result.rowcount == 1


def expired_files(session: Session, older_than: datetime, *, backend: str | None = None, host: str | None = None,
                  limit: int = 200) -> Sequence[JobRecord]:
    """Completed jobs whose stored PDF is older than `older_than` and not yet removed.

    Args:
        backend: only files kept by this storage backend (the one the caller can delete from).
        host: only files this host stored, or whose host is unknown (local disk: stored before hosts
            were recorded); None for any host.
    """
    query = select(JobRecord).where(
        JobRecord.status == COMPLETED, JobRecord.completed_at < older_than,
        JobRecord.file_deleted_at.is_(None), JobRecord.file_path.is_not(None),
    )
    if backend is not None:
        query = query.where(JobRecord.storage_backend == backend)
    if host is not None:
        query = query.where(or_(JobRecord.stored_by_host == host, JobRecord.stored_by_host.is_(None)))
    return session.scalars(query.order_by(JobRecord.completed_at).limit(limit)).all()


def mark_file_deleted(session: Session, job_id: str) -> None:
    """Record that the job's PDF was removed by the retention clean-up."""
    session.execute(update(JobRecord).where(JobRecord.job_id == job_id).values(file_deleted_at=utcnow()))
    session.commit()
