"""Job status and download."""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, send_file
from flask.typing import ResponseReturnValue

from api.auth import current_client, require_client
from api.errors import ConflictError, GoneError, NotFoundError
from api.extension import runtime
from api.serialize import job_status_body
from jobs.eta import estimate
from jobs.progress import live_progress
from store import deliveries as delivery_store
from store import jobs as job_store
from store.models import COMPLETED, JobRecord

bp = Blueprint("jobs", __name__, url_prefix="/api/jobs")


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
    """The PDF (streamed), or a redirect to its Google Drive copy."""
    return pdf_response(load_job(job_id))


def pdf_response(job: JobRecord) -> ResponseReturnValue:
    """The PDF of a job (streamed), a redirect to its Drive copy, or 409/410 saying why there is none."""
    job_id = job.job_id
    if job.status != COMPLETED:
        raise ConflictError(
            f"Job {job_id} is {job.status}, not completed; the PDF can be downloaded once it is completed.",
            error="not_completed",
        )
    if job.file_deleted_at is not None:
        raise GoneError(
            f"The PDF of job {job_id} was removed after the retention period "
            f"({runtime().settings.pdf_retention_days} days); submit the job again to regenerate it.",
        )
    if job.storage_backend != "local" and job.google_drive_link:
        return redirect(job.google_drive_link, code=302)
    stream = runtime().storage.open(job.file_path)
    filename = f"{job.product_id}_{job.code}.pdf"
    return send_file(stream, mimetype="application/pdf", as_attachment=True, download_name=filename)
