"""Steering jobs: cancel (queued, scheduled or running) and retry (failed or cancelled)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.exceptions import RedisError
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

from jobs import outcome
from jobs.runtime import Runtime
from jobs.submit import enqueue_job
from store import job_admin
from store import jobs as job_store
from store.job_admin import JobStateError
from store.models import CANCELLED, QUEUED, JobRecord

log = logging.getLogger(__name__)

__all__ = ["JobStateError", "RequeueReport", "cancel_job", "requeue_failed", "retry_job"]

CANCEL_MESSAGE = "cancelled on request"


def cancel_job(rt: Runtime, job_id: str, *, reason: str = CANCEL_MESSAGE) -> JobRecord:
    """Cancel a queued, scheduled or running job; raise JobStateError when it has already ended.

    The SQL row becomes `cancelled` first (with the failure webhook in the same transaction), so the
    answer is final at once; then the RQ job is taken off its queue, or a running one is stopped.
    A job that is dequeued at this moment skips itself: the job function ignores final jobs.
    """
    job = outcome.end_job(rt, job_id, CANCELLED, error=reason)
    if job is None:
        with rt.session() as session:
            current = job_store.get_job(session, job_id)
        if current is None:
            raise LookupError(job_id)
        raise JobStateError(current, f"job {job_id} is already {current.status}; only unfinished jobs can be cancelled")
    log.info("job=%s event=cancelled", job_id)
    _withdraw_from_rq(rt, job_id)
    return job


def _withdraw_from_rq(rt: Runtime, job_id: str) -> None:
    """Remove the RQ job from its queue or retry schedule, or stop it when a worker runs it."""
    try:
        rq_job = Job.fetch(job_id, connection=rt.redis)
        status = rq_job.get_status(refresh=False)
        if status == JobStatus.STARTED:
            send_stop_job_command(rt.redis, job_id)
            log.info("job=%s event=stop_sent worker=%s", job_id, rq_job.worker_name)
        elif status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            rq_job.cancel()
    except (NoSuchJobError, InvalidJobOperation):
        pass  # not in RQ (scheduled in SQL, not handed over yet) or just finished: nothing to withdraw
    except RedisError as exc:
        # The SQL row is final already; a job dequeued later skips itself.
        log.warning("job=%s event=withdraw_deferred reason=%r", job_id, str(exc))


def retry_job(rt: Runtime, job_id: str) -> JobRecord:
    """Re-queue a failed or cancelled job under the same id (retry_count kept).

    Raises JobStateError (not failed/cancelled, or still being stopped), store.jobs.DuplicateJobError
    (another active job for the same code and product) or LookupError (unknown id).
    """
    with rt.session() as session:
        current = job_store.get_job(session, job_id)
    if current is None:
        raise LookupError(job_id)
    if current.status not in job_admin.RETRYABLE_STATES:
        raise JobStateError(current, f"job {job_id} is {current.status}; only failed or cancelled jobs can be retried")
    _forget_rq_job(rt, current)
    with rt.session() as session:
        job = job_admin.reopen_job(session, job_id)
    if job is None:
        raise LookupError(job_id)
    log.info("job=%s event=retry status=%s retry_count=%s", job_id, job.status, job.retry_count)
    if job.status == QUEUED:
        enqueue_job(rt, job)
    return job


def _forget_rq_job(rt: Runtime, job: JobRecord) -> None:
    """Delete the previous RQ job (hash and registry entries) so the new one starts clean."""
    try:
        rq_job = Job.fetch(job.job_id, connection=rt.redis)
        if rq_job.get_status(refresh=False) == JobStatus.STARTED:
            raise JobStateError(job, f"job {job.job_id} is still being stopped by its worker; retry in a few seconds")
        rq_job.delete(remove_from_queue=True)
    except NoSuchJobError:
        return
    except RedisError as exc:
        log.warning("job=%s event=rq_cleanup_skipped reason=%r", job.job_id, str(exc))


@dataclass(frozen=True)
class RequeueReport:
    """What requeue_failed did."""

    requeued: list[str]
    skipped: dict[str, str]


def requeue_failed(rt: Runtime, *, client_name: str | None = None, limit: int = 1000) -> RequeueReport:
    """Retry every failed job (oldest first); jobs that cannot be retried now are reported, not fatal."""
    with rt.session() as session:
        job_ids = job_admin.failed_job_ids(session, client_name=client_name, limit=limit)
    requeued, skipped = [], {}
    for job_id in job_ids:
        try:
            retry_job(rt, job_id)
        except job_store.DuplicateJobError as exc:
            skipped[job_id] = f"job {exc.existing.job_id} for the same code and product is active"
        except (JobStateError, LookupError) as exc:
            skipped[job_id] = str(exc)
        else:
            requeued.append(job_id)
    return RequeueReport(requeued, skipped)
