"""Accepting a job: record it in SQL first, then hand it to RQ (the API calls this)."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError
from rq import Queue, Retry
from sqlalchemy import func, select

from config import Settings
from store import jobs as job_store
from store.models import QUEUED, SCHEDULED, JobRecord, utcnow
from workers.eta import queue_ticket
from workers.queues import GENERATE_PDF, PDF_QUEUES
from workers.runtime import Runtime

log = logging.getLogger(__name__)


class QueueFullError(Exception):
    """The queue holds MAX_QUEUE_SIZE jobs already; the caller should retry later."""

    def __init__(self, queued: int, limit: int, retry_after: int):
        self.queued, self.limit, self.retry_after = queued, limit, retry_after
        super().__init__(f"the queue holds {queued} jobs, its maximum is {limit}")


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
    """The job, and whether this request created it (False: an earlier job was returned)."""

    job: JobRecord
    created: bool
    enqueued: bool = True


def new_job_id() -> str:
    """A new, unguessable job id."""
    return "pdf_" + secrets.token_hex(12)


def submit_job(rt: Runtime, client_name: str, request: JobRequest) -> SubmitResult:
    """Record the job in SQL (committed), then enqueue it; Redis being down only delays the enqueue."""
    with rt.session() as session:
        if request.idempotency_key:
            existing = job_store.find_by_idempotency_key(session, client_name, request.idempotency_key)
            if existing is not None:
                return _replay(existing, request)
        ensure_capacity(rt, session)
        job = _new_record(client_name, request)
        try:
            job = job_store.create_job(session, job)
        except job_store.DuplicateJobError as duplicate:
            if duplicate.reason == "idempotency_key":
                return _replay(duplicate.existing, request)
            return SubmitResult(duplicate.existing, created=False)
    enqueued = enqueue_job(rt, job) if job.status == QUEUED else True
    log.info("job=%s event=accepted client=%s product=%s priority=%s status=%s",
             job.job_id, client_name, job.product_id, job.priority, job.status)
    return SubmitResult(job, created=True, enqueued=enqueued)


def _replay(existing: JobRecord, request: JobRequest) -> SubmitResult:
    if existing.request_fingerprint != request.fingerprint():
        raise IdempotencyKeyReusedError(existing)
    return SubmitResult(existing, created=False)


def _new_record(client_name: str, request: JobRequest) -> JobRecord:
    now = utcnow()
    scheduled = request.run_at is not None and request.run_at > now
    return JobRecord(
        job_id=new_job_id(),
        client_name=client_name,
        code=request.code,
        product_id=request.product_id,
        priority=request.priority,
        status=SCHEDULED if scheduled else QUEUED,
        progress=0,
        phase="scheduled" if scheduled else "queued",
        request_data=request.data,
        callback_url=request.callback,
        failure_callback_url=request.failure_callback,
        run_at=request.run_at if scheduled else None,
        idempotency_key=request.idempotency_key,
        request_fingerprint=request.fingerprint(),
        created_at=now,
        updated_at=now,
        retry_count=0,
        attempts=0,
    )


def ensure_capacity(rt: Runtime, session: Any) -> None:
    """Raise QueueFullError when MAX_QUEUE_SIZE jobs are waiting."""
    limit = rt.settings.max_queue_size
    queued = queued_count(rt, session)
    if queued >= limit:
        raise QueueFullError(queued, limit, retry_after=max(5, min(300, queued // max(rt.settings.workers, 1))))


def queued_count(rt: Runtime, session: Any) -> int:
    """Jobs waiting for a worker: the RQ queue lengths, or SQL when Redis does not answer."""
    try:
        with rt.redis.pipeline(transaction=False) as pipe:
            for name in PDF_QUEUES:
                pipe.llen(f"rq:queue:{name}")
            return sum(pipe.execute())
    except RedisError:
        return session.scalar(select(func.count()).select_from(JobRecord).where(JobRecord.status == QUEUED)) or 0


def enqueue_job(rt: Runtime, job: JobRecord, *, at_front: bool = False) -> bool:
    """Hand the job to RQ under its own id; False (logged) when Redis is unavailable."""
    try:
        with rt.redis.pipeline() as pipe:  # one round trip (RQ alone makes two)
            Queue(job.priority, connection=rt.redis).enqueue_call(
                GENERATE_PDF, args=(job.job_id,), job_id=job.job_id, at_front=at_front, pipeline=pipe,
                meta=queue_ticket(rt.redis, job.priority, at_front=at_front), **rq_options(rt.settings, job),
            )
            pipe.execute()
    except RedisError as exc:
        log.warning("job=%s event=enqueue_deferred reason=%r", job.job_id, str(exc))
        return False
    return True


def rq_options(settings: Settings, job: JobRecord) -> dict[str, Any]:
    """The RQ options every PDF job is enqueued with (timeout, TTLs, retries, description)."""
    delays = list(settings.job_retry_delays)
    return {
        "timeout": settings.job_timeout,
        "result_ttl": settings.cleanup_completed_after,
        "failure_ttl": settings.cleanup_completed_after,
        "retry": Retry(max=len(delays), interval=delays) if delays else None,
        "description": f"{job.product_id} {job.code}",
    }
