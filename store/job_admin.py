"""Operator actions on finished jobs: reopening one for a retry, finding the dead letters."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.jobs import DuplicateJobError, active_key_for, lock_job
from store.models import CANCELLED, FAILED, QUEUED, SCHEDULED, JobRecord, utcnow

RETRYABLE_STATES = frozenset({FAILED, CANCELLED})


class JobStateError(Exception):
    """The job is not in a state that allows this action."""

    def __init__(self, job: JobRecord, message: str):
        self.job = job
        super().__init__(message)


def reopen_job(session: Session, job_id: str, *, _again: bool = True) -> JobRecord | None:
    """Make a failed or cancelled job active again under the same id (retry_count kept), committed.

    Returns None for an unknown id; raises JobStateError when the job is not failed or cancelled, and
    DuplicateJobError (reason "active") when another active job holds the same client + code + product.
    """
    job = lock_job(session, job_id)
    if job is None:
        session.rollback()
        return None
    if job.status not in RETRYABLE_STATES:
        session.rollback()
        raise JobStateError(job, f"job {job_id} is {job.status}; only failed or cancelled jobs can be retried")
    now = utcnow()
    scheduled = job.run_at is not None and job.run_at > now
    job.status = SCHEDULED if scheduled else QUEUED
    job.phase = "scheduled (retry)" if scheduled else "queued (retry)"
    job.active_key = active_key_for(job.client_name, job.code, job.product_id)
    job.progress = 0
    job.started_at = None
    job.completed_at = None
    job.error_message = None
    job.processing_ms = None
    job.updated_at = now
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        holder = session.scalar(
            select(JobRecord).where(JobRecord.active_key == active_key_for(job.client_name, job.code, job.product_id))
        )
        if holder is None and _again:  # the other job ended meanwhile: the retry may go ahead now
            return reopen_job(session, job_id, _again=False)
        if holder is None:
            raise JobStateError(job, f"job {job_id} could not be reactivated; try again") from None
        raise DuplicateJobError(holder, "active") from None
    return job


def failed_job_ids(session: Session, *, client_name: str | None = None, limit: int = 1000) -> Sequence[str]:
    """Ids of failed jobs (the dead letters), oldest first."""
    query = select(JobRecord.job_id).where(JobRecord.status == FAILED)
    if client_name is not None:
        query = query.where(JobRecord.client_name == client_name)
    return session.scalars(query.order_by(JobRecord.updated_at).limit(limit)).all()
