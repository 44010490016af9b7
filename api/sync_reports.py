"""POST /api/reports/generate: the synchronous (backward compatible) endpoint."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from api.auth import require_client
from api.errors import ConflictError, UnprocessableError
from api.extension import runtime
from api.jobs import pdf_response
from api.reports import submit_or_refuse
from api.requests import parse_job_request
from api.serialize import accepted_body
from jobs.eta import estimate
from jobs.watch import wait_until_final
from store.models import CANCELLED, COMPLETED, FAILED

bp = Blueprint("sync_reports", __name__, url_prefix="/api/reports")


@bp.post("/generate")
@require_client
def generate_report() -> ResponseReturnValue:
    """The PDF itself when the job ends within SYNC_TIMEOUT; otherwise 202 with the job, as the async endpoint."""
    result = submit_or_refuse(parse_job_request())
    rt = runtime()
    settings = rt.settings
    job = wait_until_final(rt, result.job.job_id, timeout=settings.sync_timeout,
                           interval=settings.job_watch_interval) or result.job
    if job.status == COMPLETED:
        return pdf_response(job)
    if job.status == FAILED:
        raise UnprocessableError(
            f"Job {job.job_id} failed: {job.error_message}", error="job_failed",
            details=[{"field": "job_id", "message": "failed", "job_id": job.job_id}],
        )
    if job.status == CANCELLED:
        raise ConflictError(f"Job {job.job_id} was cancelled: {job.error_message}", error="job_cancelled",
                            details=[{"field": "job_id", "message": "cancelled", "job_id": job.job_id}])
    position, eta = estimate(rt, job)
    body = accepted_body(job, position, eta)
    return jsonify(body), 202, {"Location": body["status_url"]}
