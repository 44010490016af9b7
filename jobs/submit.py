"""Accepting a job: record it in SQL first, then hand it to RQ (the API calls this)."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import bindparam, event, func, literal_column, select

from config import Settings
from jobs import eta
from jobs.eta import QueueSnapshot
from jobs.queues import GENERATE_PDF
from jobs.retry_policy import job_retry
from jobs.runtime import Runtime
from store import audit as audit_store
from store import jobs as job_store
from store.models import QUEUED, SCHEDULED, JobRecord, utcnow

log = logging.getLogger(__name__)


class QueueFullError(Exception):
    """The queue holds MAX_QUEUE_SIZE jobs (queued and scheduled) already; the caller should retry later."""

    def __init__(self, queued: int, limit: int, retry_after: int):
        self.queued, self.limit, self.retry_after = queued, limit, retry_after
        super().__init__(f"the queue holds {queued} jobs, its maximum is {limit}")


class ClientQuotaError(Exception):
    """The client has its maximum of queued and scheduled jobs already; it should retry later."""

    def __init__(self, client_name: str, waiting: int, limit: int, retry_after: int):
        self.client_name, self.waiting, self.limit, self.retry_after = client_name, waiting, limit, retry_after
        super().__init__(f"client {client_name!r} has {waiting} jobs queued or scheduled, its maximum is {limit}")


class IdempotencyKeyReusedError(Exception):
    """An Idempotency-Key was sent again with a different request body."""

    def __init__(self, existing: JobRecord):
        self.existing = existing
        super().__init__("Idempotency-Key already used for a different request")


@dataclass(frozen=True)
class JobRequest:
    """A validated submit request."""

    code: str
    product_id: str
    priority: str = "normal"
    callback: str | None = None
    failure_callback: str | None = None
    data: dict[str, Any] | None = None
    run_at: datetime | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        """A digest of what the request asks for (the Idempotency-Key must keep meaning the same)."""
        fields = {
            "code": self.code,
            "productId": self.product_id,
            "priority": self.priority,
            "callback": self.callback,
            "failureCallback": self.failure_callback,
            "data": self.data,
            "runAt": self.run_at.isoformat() if self.run_at else None,
        }
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class SubmitResult:
    """The job, and whether this request created it (False: an earlier job was returned).

    `snapshot` is the queue as the enqueue round trip saw it (for the position and ETA of the answer).
    """

    job: JobRecord
    created: bool
    snapshot: QueueSnapshot | None = None
    audited: bool = False  # the call's audit row was committed with the job

    @property
    def enqueued(self) -> bool:
        """False only for a queued job this request created and could not hand to RQ (Redis failed)."""
        return not self.created or self.job.status != QUEUED or self.snapshot is not None


def new_job_id() -> str:
    """A new, unguessable job id."""
    return "pdf_" + secrets.token_hex(12)


def submit_job(rt: Runtime, client_name: str, request: JobRequest, *, max_queued: int | None = None,
               audit: audit_store.Entry | None = None) -> SubmitResult:
    """Record the job in SQL (committed), then enqueue it; Redis being down only delays the enqueue.

    Args:
        max_queued: the client's own cap of queued + scheduled jobs; None: MAX_QUEUED_PER_CLIENT.
        audit: this call's audit entry: committed in the job's own transaction when the job is created
            (one commit per submit, not two); `SubmitResult.audited` says whether it was.
    """
    values = new_job_row(client_name, request)
    with rt.session() as session:
        if request.idempotency_key:
            existing = job_store.find_by_idempotency_key(session, client_name, request.idempotency_key)
            if existing is not None:
                return _replay(existing, request)
        try:
            ticket = admit(rt, session, client_name, request.priority, take_ticket=values["status"] == QUEUED,
                           max_queued=max_queued or rt.settings.max_queued_per_client)
        except (QueueFullError, ClientQuotaError):
            existing = active_duplicate(session, client_name, request)
            if existing is None:
                raise
            return SubmitResult(existing, created=False)  # a repeated request finds its job even when full
        values["created_at"] = values["updated_at"] = utcnow()  # the insert's own time, after the checks
        rollbacks = _add_audit(session, audit, values["job_id"])
        try:
            job = job_store.create_job(session, values)
        except job_store.DuplicateJobError as duplicate:
            if duplicate.reason == "idempotency_key":
                return _replay(duplicate.existing, request)
            return SubmitResult(duplicate.existing, created=False)
        audited = audit is not None and not rollbacks  # a retried insert rolled the audit row back
    snap = enqueue_job(rt, job, ticket=ticket) if job.status == QUEUED else None
    log.info("job=%s event=accepted client=%s product=%s priority=%s status=%s",
             job.job_id, client_name, job.product_id, job.priority, job.status)
    return SubmitResult(job, created=True, snapshot=snap, audited=audited)


def _add_audit(session: Any, audit: audit_store.Entry | None, job_id: str) -> list[bool]:
    """Put the call's audit row into the session's transaction; the list gets an item if it rolls back."""
    rollbacks: list[bool] = []
    if audit is not None:
        event.listen(session, "after_rollback", lambda _session: rollbacks.append(True))
        audit_store.add(session, replace(audit, job_id=job_id))
    return rollbacks


def active_duplicate(session: Any, client_name: str, request: JobRequest) -> JobRecord | None:
    """The client's active job for the same code and productId, if any."""
    key = job_store.active_key_for(client_name, request.code, request.product_id)
    return session.scalar(select(JobRecord).where(JobRecord.active_key == key))


def _replay(existing: JobRecord, request: JobRequest) -> SubmitResult:
    if existing.request_fingerprint != request.fingerprint():
        raise IdempotencyKeyReusedError(existing)
    return SubmitResult(existing, created=False)


def new_job_row(client_name: str, request: JobRequest) -> dict[str, Any]:
    """The column values of a new job (the bench's bulk fill writes the same rows)."""
    now = utcnow()
    scheduled = request.run_at is not None and request.run_at > now
    return {
        "job_id": new_job_id(),
        "client_name": client_name,
        "code": request.code,
        "product_id": request.product_id,
        "priority": request.priority,
        "status": SCHEDULED if scheduled else QUEUED,
        "progress": 0,
        "phase": "scheduled" if scheduled else "queued",
        "request_data": request.data,
        "callback_url": request.callback,
        "failure_callback_url": request.failure_callback,
        "run_at": request.run_at if scheduled else None,
        "idempotency_key": request.idempotency_key,
        "request_fingerprint": request.fingerprint(),
        "created_at": now,
        "updated_at": now,
        "retry_count": 0,
        "attempts": 0,
    }


def admit(rt: Runtime, session: Any, client_name: str, priority: str, *, take_ticket: bool,
          max_queued: int) -> int | None:
    """Raise ClientQuotaError when the client has `max_queued` jobs waiting, QueueFullError when
    MAX_QUEUE_SIZE jobs are waiting (queued in RQ, or scheduled in SQL); else the job's queue ticket
    (None when not asked for, or when Redis does not answer and SQL counted the queue instead).

    Concurrent submits of one client may pass the client's cap by the number in flight (count, then insert).
    """
    limit, workers = rt.settings.max_queue_size, max(rt.settings.workers, 1)
    scheduled = admit_client(rt, session, client_name, 1, max_queued)
    try:
        queued, ticket = eta.admit(rt.redis, priority, limit - scheduled, take_ticket=take_ticket)
        queued += scheduled
    except RedisError:
        queued, ticket = queued_in_sql(session), None
    if queued >= limit:
        raise QueueFullError(queued, limit, retry_after=max(5, min(300, queued // workers)))
    return ticket


def admit_client(rt: Runtime, session: Any, client_name: str, adding: int, max_queued: int) -> int:
    """Raise ClientQuotaError when the client's queued + scheduled jobs and `adding` new ones pass `max_queued`;
    else the scheduled jobs of every client (they count toward MAX_QUEUE_SIZE too)."""
    limit = rt.settings.max_queue_size
    # a cap at or above MAX_QUEUE_SIZE can never bind before the queue's own: nothing to count for it
    client_cap = max_queued if max_queued < limit else None
    scheduled, waiting = waiting_in_sql(session, client_name, scheduled_cap=limit, client_cap=client_cap)
    if client_cap is not None and waiting + adding > max_queued:
        retry_after = max(5, min(300, waiting // max(rt.settings.workers, 1)))
        raise ClientQuotaError(client_name, waiting, max_queued, retry_after=retry_after)
    return scheduled


def waiting_in_sql(session: Any, client_name: str, *, scheduled_cap: int,
                   client_cap: int | None) -> tuple[int, int]:
    """(scheduled jobs of every client, queued + scheduled jobs of this client: 0 uncounted when `client_cap`
    is None), in one statement; each count stops at its cap, so a submit reads at most that many index
    entries however long the queue is. Core on the session's connection: ~0.04 ms, the ORM path ~0.4 ms."""
    row = session.connection().execute(_WAITING, {
        "scheduled_cap": scheduled_cap, "client_name": client_name, "client_cap": client_cap or 0}).one()
    return int(row[0] or 0), int(row[1] or 0)


def _bounded_count(cap: str, *conditions: Any) -> Any:
    jobs = JobRecord.__table__
    rows = select(literal_column("1")).select_from(jobs).where(*conditions).limit(bindparam(cap)).subquery()
    return select(func.count()).select_from(rows).scalar_subquery()


_JOBS = JobRecord.__table__.c
_WAITING = select(
    _bounded_count("scheduled_cap", _JOBS.status == SCHEDULED),
    _bounded_count("client_cap", _JOBS.client_name == bindparam("client_name"), _JOBS.status.in_((QUEUED, SCHEDULED))),
)


def queued_in_sql(session: Any) -> int:
    """Jobs waiting for a worker or their runAt according to SQL (when Redis does not answer)."""
    waiting = JobRecord.status.in_((QUEUED, SCHEDULED))
    return session.scalar(select(func.count()).select_from(JobRecord).where(waiting)) or 0


def enqueue_job(
    rt: Runtime, job: JobRecord, *, at_front: bool = False, ticket: int | None = None
) -> QueueSnapshot | None:
    """Hand the job to RQ under its own id; the queue as it is right after, or None (logged) when Redis
    is unavailable. One round trip (RQ alone makes two), plus one for the ticket unless given."""
    try:
        meta = {"queue_ticket": ticket} if ticket is not None else \
            eta.queue_ticket(rt.redis, job.priority, at_front=at_front)
        with rt.redis.pipeline() as pipe:
            Queue(job.priority, connection=rt.redis).enqueue_call(
                GENERATE_PDF, args=(job.job_id,), job_id=job.job_id, at_front=at_front, pipeline=pipe,
                meta=meta, **rq_options(rt.settings, job),
            )
            eta.read_snapshot(pipe, job.job_id, job.priority)
            return eta.snapshot_from(pipe.execute(), job.priority)
    except RedisError as exc:
        log.warning("job=%s event=enqueue_deferred reason=%r", job.job_id, str(exc))
        return None


def rq_options(settings: Settings, job: JobRecord) -> dict[str, Any]:
    """The RQ options every PDF job is enqueued with (timeout, TTLs, retries, description)."""
    return {
        "timeout": settings.job_timeout,
        "result_ttl": settings.cleanup_completed_after,
        "failure_ttl": settings.cleanup_completed_after,
        "retry": job_retry(settings),
        "description": f"{job.product_id} {job.code}",
    }
