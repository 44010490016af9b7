"""The RQ job that renders, stores and records one PDF. Takes a job id, never objects."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from rq import get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException

from jobs import eta, failure_text, filenames, outcome
from jobs.errors import PermanentJobError, is_permanent
from jobs.lease import HeldLease, job_lease
from jobs.progress import META_PROGRESS_INTERVAL, SQL_PROGRESS_INTERVAL
from jobs.retry_policy import job_retry_delay
from jobs.runtime import Runtime, get_runtime
from storage.staging import staging_area
from store import jobs as job_store
from store.models import CANCELLED, FAILED, JobRecord, utcnow
from workers.rq_worker import JobStoppedError, JobTimedOutError

log = logging.getLogger(__name__)


def generate_pdf(job_id: str) -> dict[str, Any]:
    """Render the report of job `job_id`, store it and record the result (RQ entry point)."""
    rt = get_runtime()
    rq_job = get_current_job()
    with rt.engine.begin() as connection:
        job = job_store.mark_started(connection, job_id)
    # The queue's dequeued mark (queue positions) moves after the claim, in the lease's round trip.
    mark_dequeued = (lambda target: eta.mark_dequeued(target, rq_job.origin, rq_job.meta)) if rq_job else None
    if job is None:
        if mark_dequeued is not None:
            mark_dequeued(rt.redis)
        log.info("job=%s event=skipped reason=already_final", job_id)
        return {"job_id": job_id, "skipped": True}
    log.info("job=%s event=started attempt=%s", job_id, job.attempts)
    started = time.monotonic()
    progress = ProgressReporter(rt, job.job_id, rq_job)
    try:
        with job_lease(rt.redis, job_id, rt.settings.stale_job_grace,
                       tick=progress.flush, tick_every=META_PROGRESS_INTERVAL, also=mark_dequeued) as lease:
            result = _run(rt, job, rq_job, progress, started, lease)
    except BaseException as exc:
        _handle_failure(rt, job, rq_job, exc, uploading=progress.uploading)
        raise
    return result


def _run(
    rt: Runtime, job: JobRecord, rq_job: Job | None, progress: ProgressReporter, started: float, lease: HeldLease
) -> dict[str, Any]:
    pdf = rendered_pdf(rt, job, progress)
    progress(50, f"{upload_step(rt)} in progress", force=stages_uploads(rt))  # an upload can take a while
    progress.uploading = True
    stored = rt.storage.put(f"{job.job_id}.pdf", pdf, filename=pdf_filename(job))
    progress.uploading = False
    progress(80, "stored")
    elapsed_ms = int((time.monotonic() - started) * 1000)
    outcome.complete_job(
        rt, job.job_id,
        storage_backend=stored.backend, file_path=stored.location, file_size=stored.size,
        google_drive_link=stored.link, processing_ms=elapsed_ms, stored_by_host=rt.settings.host_name,
        also=lease.give_back,  # the lease goes in the hand-over's round trip: the job is final in SQL now
    )
    if stages_uploads(rt):
        _discard_staged(rt, job.job_id)  # after the SQL result: a retry of a failed commit still skips the render
    return {"job_id": job.job_id, "location": stored.location, "size": stored.size}


def rendered_pdf(rt: Runtime, job: JobRecord, progress: ProgressReporter) -> bytes:
    """The PDF kept by an earlier attempt whose upload failed, or a new render (kept for remote storage).

    The kept file is on the disk of the host that rendered it (DATA_DIR/staging): a retry that runs
    on another host does not find it and renders again (see docs/storage.md, "Upload-only retry").
    """
    staging = staging_area(rt.settings.data_dir) if stages_uploads(rt) else None
    kept = staging.load(job.job_id) if staging is not None else None
    if kept is not None:
        log.info("job=%s event=render_skipped reason=kept_from_failed_upload bytes=%s", job.job_id, len(kept))
        progress(40, "rendered by an earlier attempt; retrying the upload only")
        return kept
    template = rt.templates.get(job.product_id)
    data = load_report_data(rt, job)
    progress(10, "data loaded")
    pdf = template.render(data, progress=lambda pct, msg: progress(10 + pct * 30 // 100, msg), code=job.code,
                          job_id=job.job_id)
    if staging is not None:
        try:
            staging.save(job.job_id, pdf)
        except OSError as exc:  # only an optimisation: the upload can go ahead without it
            log.warning("job=%s event=staging_failed error=%r", job.job_id, str(exc))
    progress(40, "rendered")
    return pdf


def stages_uploads(rt: Runtime) -> bool:
    """Whether rendered PDFs are kept until uploaded (remote storage: an upload can fail on its own)."""
    return rt.storage.name != "local"


def upload_step(rt: Runtime) -> str:
    """The storing step in words, for phases and error messages."""
    steps = {"gdrive": "upload to Google Drive", "s3": "upload to S3", "dropbox": "upload to Dropbox",
             "local": "saving to local disk"}
    return steps.get(rt.storage.name, f"upload to {rt.storage.name} storage")


def _discard_staged(rt: Runtime, job_id: str) -> None:
    """Remove the kept PDF of a job that is stored or has ended (a missing file is fine)."""
    try:
        staging_area(rt.settings.data_dir).discard(job_id)
    except OSError as exc:  # the staging sweep removes it later
        log.warning("job=%s event=staged_pdf_not_removed error=%r", job_id, str(exc))


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
    """A readable file name: product, code and date, with no directory part or control character."""
    return filenames.stored_name(job)


def _handle_failure(
    rt: Runtime, job: JobRecord, rq_job: Job | None, exc: BaseException, *, uploading: bool = False
) -> None:
    """Decide between a retry and the final failure, and record it (once, never per attempt)."""
    if isinstance(exc, JobStoppedError):  # cancel (or a stop from rq-dashboard): never a retry
        log.info("job=%s event=stopped", job.job_id)
        outcome.end_job(rt, job.job_id, CANCELLED, error="cancelled while running (stopped on request)")
        _discard_staged(rt, job.job_id)
        return
    message = describe_error(rt, exc, step=upload_step(rt) if uploading else None)
    permanent = is_permanent(exc)
    retries_left = rq_job.retries_left if rq_job is not None else 0
    if permanent and rq_job is not None:
        rq_job.retries_left = 0  # RQ must not retry what can never succeed
    if permanent or not retries_left:
        log.warning("job=%s event=failed permanent=%s error=%r detail=%r",
                    job.job_id, permanent, message, failure_text.log_detail(exc))
        outcome.end_job(rt, job.job_id, FAILED, error=message)
        _discard_staged(rt, job.job_id)
        return
    retry_at = utcnow() + timedelta(seconds=job_retry_delay(rq_job))
    phase = "retrying"
    kept_on = None
    if uploading and stages_uploads(rt) and staging_area(rt.settings.data_dir).path(job.job_id).exists():
        message = f"{message}; will retry the upload only"
        phase = f"{upload_step(rt)} failed; retrying the upload only"
        kept_on = rt.settings.host_name  # a retry taken by another host renders again
    log.warning("job=%s event=retrying retries_left=%s pdf_kept_on=%s error=%r detail=%r",
                job.job_id, retries_left, kept_on, message, failure_text.log_detail(exc))
    with rt.session() as session:
        job_store.mark_retrying(session, job.job_id, message, retry_at, phase=phase)


def describe_error(rt: Runtime, exc: BaseException, *, step: str | None = None) -> str:
    """What went wrong (and in which step) for the status and the failure webhook: no server paths or
    exception reprs (workers/failure_text.py); the log keeps the detail with the job id."""
    if isinstance(exc, (JobTimeoutException, JobTimedOutError)):
        text = f"timed out after {rt.settings.job_timeout} s"
    else:
        text = failure_text.client_text(exc)
    if step:
        text = f"{step} failed: {text}"
    return text[:2000]


class ProgressReporter:
    """A running job's progress: in the RQ job meta within META_PROGRESS_INTERVAL s of a step, in the
    SQL row at most every SQL_PROGRESS_INTERVAL s.

    A report renders in tens of milliseconds; writing each of its steps would cost Redis writes that
    nobody can see. So a step is only remembered, and `flush` (called by the job lease's thread every
    META_PROGRESS_INTERVAL s) publishes it if it is still the current one; `force` publishes at once.
    """

    def __init__(self, rt: Runtime, job_id: str, rq_job: Job | None):
        self.rt, self.job_id, self.rq_job = rt, job_id, rq_job
        self.uploading = False  # True while the PDF is being stored (names the failed step)
        self.sql_written = time.monotonic()  # mark_started has just written the row ("started", 0)
        self._current: tuple[int, str] | None = None
        self._published: tuple[int, str] | None = None
        self._lock = threading.Lock()  # __call__ (job thread) and flush (lease thread) both publish

    def __call__(self, percent: int, phase: str, *, force: bool = False) -> None:
        self._current = (percent, phase)
        if force:
            self.flush()
        now = time.monotonic()
        if self.rq_job is None or now - self.sql_written >= SQL_PROGRESS_INTERVAL:
            self.sql_written = now
            with self.rt.session() as session:
                job_store.set_progress(session, self.job_id, percent, phase)

    def flush(self) -> None:
        """Write the current step to the RQ meta unless it is there already."""
        with self._lock:
            step = self._current
            if self.rq_job is None or step is None or step == self._published:
                return
            self.rq_job.meta.update(progress=step[0], phase=step[1])
            self.rq_job.save_meta()
            self._published = step
