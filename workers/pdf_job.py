"""The RQ job that renders, stores and records one PDF. Takes a job id, never objects."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from rq import get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException

from store import jobs as job_store
from store.models import CANCELLED, FAILED, JobRecord, utcnow
from workers import outcome
from workers.errors import PermanentJobError, is_permanent
from workers.runtime import Runtime, get_runtime
from workers.worker import JobStoppedError

log = logging.getLogger(__name__)


def generate_pdf(job_id: str) -> dict[str, Any]:
    """Render the report of job `job_id`, store it and record the result (RQ entry point)."""
    rt = get_runtime()
    rq_job = get_current_job()
    with rt.session() as session:
        job = job_store.mark_started(session, job_id)
    if job is None:
        log.info("job=%s event=skipped reason=already_final", job_id)
        return {"job_id": job_id, "skipped": True}
    log.info("job=%s event=started attempt=%s", job_id, job.attempts)
    started = time.monotonic()
    try:
        result = _run(rt, job, rq_job, started)
    except BaseException as exc:
        _handle_failure(rt, job, rq_job, exc)
        raise
    return result


def _run(rt: Runtime, job: JobRecord, rq_job: Job | None, started: float) -> dict[str, Any]:
    progress = ProgressReporter(rt, job.job_id, rq_job)
    template = rt.templates.get(job.product_id)
    data = load_report_data(rt, job)
    progress(10, "data loaded")
    pdf = template.render(data, progress=lambda pct, msg: progress(10 + pct * 30 // 100, msg), code=job.code)
    progress(40, "rendered")
    stored = rt.storage.put(job.job_id, pdf, filename=pdf_filename(job))
    progress(80, "stored")
    elapsed_ms = int((time.monotonic() - started) * 1000)
    outcome.complete_job(
        rt, job.job_id,
        storage_backend=stored.backend, file_path=stored.location, file_size=stored.size,
        google_drive_link=stored.link, processing_ms=elapsed_ms,
    )
    if rq_job is not None:
        rq_job.meta.update(progress=100, phase="completed")
        rq_job.save_meta()
    log.info("job=%s event=completed ms=%s bytes=%s", job.job_id, elapsed_ms, stored.size)
    return {"job_id": job.job_id, "location": stored.location, "size": stored.size}


def load_report_data(rt: Runtime, job: JobRecord) -> dict[str, Any]:
    """The inline data of the request, or the MongoDB document when there is none."""
    if job.request_data is not None:
        return job.request_data
    if rt.mongo is None:
        raise PermanentJobError(
            "the request has no 'data' and no MongoDB is configured (MONGO_URI) to read it from; "
            "send the report data inline in 'data'"
        )
    return rt.mongo.fetch_report_data(job.code, job.product_id)


def pdf_filename(job: JobRecord) -> str:
    """A readable file name: product, code and date."""
    safe_code = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in job.code)[:80]
    return f"{job.product_id}_{safe_code}_{job.created_at:%Y%m%d}.pdf"


def _handle_failure(rt: Runtime, job: JobRecord, rq_job: Job | None, exc: BaseException) -> None:
    """Decide between a retry and the final failure, and record it (once, never per attempt)."""
    if isinstance(exc, JobStoppedError):  # cancel (or a stop from rq-dashboard): never a retry
        log.info("job=%s event=stopped", job.job_id)
        outcome.end_job(rt, job.job_id, CANCELLED, error="cancelled while running (stopped on request)")
        return
    message = describe_error(rt, exc)
    permanent = is_permanent(exc)
    retries_left = rq_job.retries_left if rq_job is not None else 0
    if permanent and rq_job is not None:
        rq_job.retries_left = 0  # RQ must not retry what can never succeed
    if permanent or not retries_left:
        log.warning("job=%s event=failed permanent=%s error=%r", job.job_id, permanent, message)
        outcome.end_job(rt, job.job_id, FAILED, error=message)
        return
    retry_at = utcnow() + timedelta(seconds=_next_delay(rq_job))
    log.warning("job=%s event=retrying retries_left=%s error=%r", job.job_id, retries_left, message)
    with rt.session() as session:
        job_store.mark_retrying(session, job.job_id, message, retry_at)


def _next_delay(rq_job: Job | None) -> int:
    if rq_job is None or not rq_job.retries_left:
        return 0
    return rq_job.get_retry_interval()


def describe_error(rt: Runtime, exc: BaseException) -> str:
    """A message that says what went wrong, for the status and the failure webhook."""
    if isinstance(exc, JobTimeoutException):
        return f"timed out after {rt.settings.job_timeout} s"
    text = str(exc) or exc.__class__.__name__
    return text[:2000]


class ProgressReporter:
    """Writes progress to the RQ job meta (cheap, for live views) and the SQL row."""

    def __init__(self, rt: Runtime, job_id: str, rq_job: Job | None):
        self.rt, self.job_id, self.rq_job = rt, job_id, rq_job

    def __call__(self, percent: int, phase: str) -> None:
        if self.rq_job is not None:
            self.rq_job.meta.update(progress=percent, phase=phase)
            self.rq_job.save_meta()
        with self.rt.session() as session:
            job_store.set_progress(session, self.job_id, percent, phase)
