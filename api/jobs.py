"""Job status and download."""

from __future__ import annotations

import logging
from typing import BinaryIO

from flask import Blueprint, jsonify, redirect, send_file
from flask.typing import ResponseReturnValue

from api.auth import current_client, require_client
from api.errors import ConflictError, GoneError, NotFoundError, ServiceUnavailableError
from api.extension import runtime
from api.serialize import job_status_body
from jobs.eta import estimate
from jobs.filenames import download_name
from jobs.progress import live_progress
from jobs.runtime import Runtime
from storage.base import StorageError, StoragePermanentError, StoredFileNotFoundError
from storage.dropbox_links import download_url as dropbox_download_url
from storage.local import LocalDiskStorage
from store import deliveries as delivery_store
from store import jobs as job_store
from store.models import COMPLETED, JobRecord

log = logging.getLogger(__name__)
bp = Blueprint("jobs", __name__, url_prefix="/api/jobs")
STORAGE_RETRY_AFTER = 30  # seconds a client waits before asking again while storage is down


def load_job(job_id: str) -> JobRecord:
    """The caller's job, or 404 (another client's job is answered as if it did not exist)."""
    client = current_client()
    with runtime().session() as session:
        job = job_store.get_client_job(session, job_id, client.name, admin=client.admin)
    if job is None:
        raise NotFoundError(f"No job {job_id!r}: check the id returned when the job was submitted.")
    return job


@bp.get("/<job_id>")
@require_client
def get_job_status(job_id: str) -> ResponseReturnValue:
    """Status, progress, timestamps and result of one job."""
    job = load_job(job_id)
    rt = runtime()
    with rt.session() as session:
        delivery = delivery_store.latest_for_job(session, job_id)
    position, eta = estimate(rt, job)
    body = job_status_body(job, position=position, eta=eta, delivery=delivery)
    return jsonify(body | live_progress(rt, job))


@bp.get("/<job_id>/download")
@require_client
def download_job_pdf(job_id: str) -> ResponseReturnValue:
    """The PDF (streamed), or a redirect to its Google Drive or Dropbox copy or to a presigned S3 URL."""
    return pdf_response(load_job(job_id))


def pdf_response(job: JobRecord) -> ResponseReturnValue:
    """The PDF of a job (streamed), a redirect to its stored copy, or an error saying why there is none.

    409 while not completed or when the file is on another host's disk (or in storage this host is
    not configured for), 410 after retention or when the file is missing, 503 when storage is down.
    """
    job_id = job.job_id
    if job.status != COMPLETED:
        raise ConflictError(
            f"Job {job_id} is {job.status}, not completed; the PDF can be downloaded once it is completed.",
            error="not_completed",
        )
    rt = runtime()
    if job.file_deleted_at is not None:
        raise GoneError(
            f"The PDF of job {job_id} was removed after the retention period "
            f"({rt.settings.pdf_retention_days} days); submit the job again to regenerate it.",
        )
    if job.storage_backend == "gdrive" and job.google_drive_link:
        return redirect(job.google_drive_link, code=302)
    if job.storage_backend == "dropbox" and job.google_drive_link:  # the shared link, asking for the file itself
        return redirect(dropbox_download_url(job.google_drive_link), code=302)
    try:
        if job.storage_backend == "s3":
            return _s3_response(rt, job)
        return _local_response(rt, job)
    except StoredFileNotFoundError:
        raise GoneError(_missing_message(rt, job), error="file_missing") from None
    except (StorageError, StoragePermanentError) as exc:
        log.warning("job=%s event=download_failed backend=%s error=%r", job_id, job.storage_backend, str(exc))
        raise ServiceUnavailableError(
            f"The storage that holds the PDF of job {job_id} cannot be reached right now; try again later.",
            retry_after=STORAGE_RETRY_AFTER, error="storage_unavailable",
        ) from None


def _s3_response(rt: Runtime, job: JobRecord) -> ResponseReturnValue:
    storage = rt.storage
    if storage.name != "s3":
        raise ConflictError(
            f"The PDF of job {job.job_id} is in S3 storage, but this host ({rt.settings.host_name!r}) has "
            f"STORAGE_BACKEND={storage.name}: give every host the same storage settings (STORAGE_BACKEND=s3, "
            "S3_BUCKET, ...).", error="stored_elsewhere",
        )
    if rt.settings.s3_download == "redirect":
        return redirect(storage.link(job.file_path), code=302)
    return _send(storage.open(job.file_path), job)


def _local_response(rt: Runtime, job: JobRecord) -> ResponseReturnValue:
    here = rt.settings.host_name
    if job.stored_by_host is not None and job.stored_by_host != here:
        raise ConflictError(
            f"The PDF of job {job.job_id} is on the local disk of host {job.stored_by_host!r}, and this is host "
            f"{here!r}: download it through that host, or configure shared storage (STORAGE_BACKEND=s3) on "
            "every host so that any host serves every PDF.", error="stored_elsewhere",
        )
    storage = rt.storage if rt.storage.name == "local" else LocalDiskStorage(rt.settings.pdf_dir)
    return _send(storage.open(job.file_path), job)


def _send(stream: BinaryIO, job: JobRecord) -> ResponseReturnValue:
    # werkzeug adds RFC 6266 filename* (UTF-8) beside an ASCII filename when the name is not ASCII
    return send_file(stream, mimetype="application/pdf", as_attachment=True, download_name=download_name(job))


def _missing_message(rt: Runtime, job: JobRecord) -> str:
    if job.storage_backend == "s3":
        return (f"The PDF of job {job.job_id} is missing from the bucket: it was removed outside the service; "
                "submit the job again to regenerate it.")
    return (f"The PDF of job {job.job_id} is missing from the local disk of this host ({rt.settings.host_name!r}): "
            "it was removed outside the service or DATA_DIR changed; submit the job again to regenerate it. With "
            "several hosts, or several service instances on one machine, give each its own HOST_NAME and use "
            "shared storage (STORAGE_BACKEND=s3).")
