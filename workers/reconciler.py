"""The reconciler: SQL is the record of truth, Redis the transport; this re-aligns them.

It catches every way a job can fall out of RQ:
- queued in SQL but unknown to RQ (Redis was down at submit, Redis lost its data, FLUSHALL), given up
  by RQ, started by a worker that died before it claimed the job in SQL, or taken off its queue by a
  worker that died before RQ marked it started (RQ still says "queued", but no list holds it);
- processing in SQL while no live worker holds its lease (worker or machine killed mid-job);
- left in RQ's intermediate queue by a worker that died between dequeue and start.
Each pass takes a Redis lock, so several reconcilers never re-queue the same job twice, and reads
SQL in indexed keyset batches, so it stays cheap with 100,000 rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job

from jobs import outcome
from jobs.lease import leases_held
from jobs.queues import PDF_QUEUES, rq_intermediate_key, rq_queue_key
from jobs.retry_policy import job_attempts_allowed
from jobs.runtime import Runtime
from jobs.submit import enqueue_job
from store import jobs as job_store
from store.models import FAILED, PROCESSING, QUEUED, JobRecord, utcnow

log = logging.getLogger(__name__)

LOCK_KEY = "pdfjobs:reconciler-lock"
# RQ states in which RQ will not run the job again by itself.
RQ_GAVE_UP = frozenset({"failed", "stopped", "canceled", "finished"})
EPOCH_KEY = "pdfjobs:epoch"
BATCH = 500
# Without a wipe, one pass checks at most this many rows; a wiped Redis gets a full sweep.
ROWS_PER_PASS = 5000
# A queue is read whole (to find jobs "queued" in RQ that no list holds) only up to this length. A job
# behind a longer backlog is found once the backlog in front of it is this short: before its turn.
LISTED_SCAN_LIMIT = 20_000
# Between the pop and RQ's "started" a live worker needs milliseconds: a job seen unlisted is checked
# again after this pause before it counts as lost.
POPPED_RECHECK_PAUSE = 0.5


@dataclass
class ReconcileReport:
    """What one pass did."""

    requeued_missing: int = 0
    requeued_orphans: int = 0
    failed_orphans: int = 0
    rescued_intermediate: int = 0
    full_sweep: bool = False


def reconcile(rt: Runtime) -> ReconcileReport | None:
    """One pass; None when another reconciler holds the lock or Redis does not answer."""
    try:
        if not rt.redis.set(LOCK_KEY, "1", nx=True, ex=max(rt.settings.reconcile_interval * 4, 30)):
            return None
        try:
            report = ReconcileReport(full_sweep=_redis_was_wiped(rt))
            _requeue_missing(rt, report)
            _recover_orphans(rt, report)
            _rescue_intermediate(rt, report)
        finally:
            rt.redis.delete(LOCK_KEY)
    except RedisError as exc:
        log.warning("event=reconcile_skipped reason=%r", str(exc))
        return None
    if report.requeued_missing or report.requeued_orphans or report.failed_orphans or report.rescued_intermediate:
        log.warning("event=reconciled %s", report)
    return report


def _redis_was_wiped(rt: Runtime) -> bool:
    # The epoch key is set once and never expires: its absence means Redis lost its data (or this
    # is the first pass ever); either way every unfinished job is checked.
    return bool(rt.redis.set(EPOCH_KEY, utcnow().isoformat(), nx=True))


def _batches(rt: Runtime, status: str, report: ReconcileReport):  # noqa: ANN202
    older_than = utcnow() - timedelta(seconds=rt.settings.stale_job_grace)
    budget = None if report.full_sweep else ROWS_PER_PASS
    after = None
    seen = 0
    while budget is None or seen < budget:
        with rt.session() as session:
            batch = job_store.stale_jobs(session, status, older_than, after=after, limit=BATCH)
        if not batch:
            return
        yield batch
        seen += len(batch)
        after = (batch[-1].updated_at, batch[-1].job_id)


def _requeue_missing(rt: Runtime, report: ReconcileReport) -> None:
    """Queued in SQL, but RQ lost it, gave up on it, or a worker that died took it off its queue."""
    listed = _ListedJobs(rt)
    for batch in _batches(rt, QUEUED, report):
        with rt.redis.pipeline(transaction=False) as pipe:
            for job in batch:
                pipe.hmget(Job.key_for(job.job_id), "status", "started_at")
            states = pipe.execute()
        popped = []
        for job, (status, started_at) in zip(batch, states, strict=True):
            reason = _lost_reason(rt, status, started_at)
            if reason is None and status == b"queued" and listed.unlisted(job):
                popped.append(job)
            elif reason:
                _requeue(rt, job, reason, report)
        for job in _still_popped(rt, popped):
            _requeue(rt, job, "popped_by_worker_that_died", report)


def _requeue(rt: Runtime, job: JobRecord, reason: str, report: ReconcileReport) -> None:
    if enqueue_job(rt, job):
        report.requeued_missing += 1
        log.warning("job=%s event=requeued reason=%s", job.job_id, reason)


class _ListedJobs:
    """Which job ids RQ's queue lists hold, read once per pass and per queue (short queues only)."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._ids: dict[str, set[str] | None] = {}

    def unlisted(self, job: JobRecord) -> bool:
        """Whether neither the job's queue nor its intermediate list holds it (False: cannot tell)."""
        if job.priority not in self._ids:
            self._ids[job.priority] = self._read(job.priority)
        ids = self._ids[job.priority]
        return ids is not None and job.job_id not in ids

    def _read(self, name: str) -> set[str] | None:
        keys = (rq_queue_key(name), rq_intermediate_key(name))
        if sum(self._rt.redis.llen(key) for key in keys) > LISTED_SCAN_LIMIT:
            return None
        ids: set[str] = set()
        for key in keys:
            for start in range(0, LISTED_SCAN_LIMIT, 1000):  # in slices: Redis is never held for long
                chunk = self._rt.redis.lrange(key, start, start + 999)
                ids.update(raw.decode() for raw in chunk)
                if len(chunk) < 1000:
                    break
        return ids


def _still_popped(rt: Runtime, jobs: list[JobRecord]) -> list[JobRecord]:
    """The jobs that, after a pause, are still "queued" in RQ and on no list: their worker is gone."""
    if not jobs:
        return []
    time.sleep(POPPED_RECHECK_PAUSE)
    with rt.redis.pipeline(transaction=False) as pipe:
        for job in jobs:
            pipe.hget(Job.key_for(job.job_id), "status")
            pipe.lpos(rq_queue_key(job.priority), job.job_id)
            pipe.lpos(rq_intermediate_key(job.priority), job.job_id)
        answers = pipe.execute()
    lost = []
    for number, job in enumerate(jobs):
        status, in_queue, in_intermediate = answers[3 * number:3 * number + 3]
        if status == b"queued" and in_queue is None and in_intermediate is None:
            lost.append(job)
    # A worker claims in SQL right after the pop; only jobs SQL still holds as queued are re-queued.
    with rt.session() as session:
        queued = set(job_store.queued_among(session, [job.job_id for job in lost]))
    return [job for job in lost if job.job_id in queued]


def _lost_reason(rt: Runtime, status: bytes | None, started_at: bytes | None) -> str | None:
    """Why RQ will not run a job that SQL still holds as queued (None: RQ still has it in hand)."""
    if status is None:
        return "missing_from_redis"
    state = status.decode()
    if state in RQ_GAVE_UP:
        return f"rq_status_{state}"
    if state == "started" and started_at:
        # A live worker claims a started job in SQL within milliseconds; one still unclaimed after
        # the grace period was started by a worker that died before its claim.
        started = datetime.strptime(started_at.decode(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        if started < utcnow() - timedelta(seconds=rt.settings.stale_job_grace):
            return "worker_died_before_claim"
    return None


def _recover_orphans(rt: Runtime, report: ReconcileReport) -> None:
    max_attempts = job_attempts_allowed(rt.settings)
    for batch in _batches(rt, PROCESSING, report):
        held = leases_held(rt.redis, [job.job_id for job in batch])
        for job in batch:
            if held[job.job_id]:
                continue
            reason = f"the worker running attempt {job.attempts} stopped (killed or lost) before finishing"
            if job.attempts >= max_attempts:
                outcome.end_job(rt, job.job_id, FAILED, error=f"{reason}; no attempts left")
                report.failed_orphans += 1
                continue
            with rt.session() as session:
                moved = job_store.requeue_orphan(session, job, reason)
            if moved and enqueue_job(rt, job, at_front=True):
                report.requeued_orphans += 1
                log.warning("job=%s event=requeued reason=orphaned attempt=%s", job.job_id, job.attempts)


def _rescue_intermediate(rt: Runtime, report: ReconcileReport) -> None:
    """Jobs a dead worker left in RQ's intermediate queue go back to the front of their queue."""
    for name in PDF_QUEUES:
        queue = Queue(name, connection=rt.redis)
        intermediate = queue.intermediate_queue
        for job_id in intermediate.get_job_ids():
            with rt.session() as session:
                job = job_store.get_job(session, job_id)
            if job is None or job.status != QUEUED or not _stale(rt, job):
                continue
            # LREM's count (IntermediateQueue.remove drops it) says whether this pass took the job.
            if rt.redis.lrem(intermediate.key, 1, job_id):
                rt.redis.lpush(queue.key, job_id)
                report.rescued_intermediate += 1


def _stale(rt: Runtime, job: JobRecord) -> bool:
    return job.updated_at < utcnow() - timedelta(seconds=rt.settings.stale_job_grace)
