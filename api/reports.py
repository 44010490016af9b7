"""Submitting report jobs."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, g, jsonify
from flask.typing import ResponseReturnValue

from api.audit import audit_entry
from api.auth import current_client, require_client
from api.errors import ServiceUnavailableError, UnprocessableError
from api.extension import runtime
from api.requests import parse_job_request
from api.serialize import accepted_body
from jobs.eta import estimate
from jobs.submit import IdempotencyKeyReusedError, JobRequest, QueueFullError, SubmitResult, submit_job

bp = Blueprint("reports", __name__, url_prefix="/api/reports")


@bp.post("/generate-async")
@require_client
def submit_report() -> ResponseReturnValue:
    """Accept a report job: 202 with its id (200 with the earlier job for a repeated request)."""
    result = submit_or_refuse(parse_job_request())
    job = result.job
    position, eta = answer_estimate(result)
    body = accepted_body(job, position, eta)
    status = 202 if result.created else 200
    return jsonify(body), status, {"Location": body["status_url"]}


def answer_estimate(result: SubmitResult) -> tuple[int | None, datetime | None]:
    """Position and ETA for the answer: from the enqueue's own read of the queue when it made one."""
    if result.created and not result.enqueued:  # Redis just failed for this job: ask it nothing more
        return None, None
    return estimate(runtime(), result.job, result.snapshot)


def submit_or_refuse(job_request: JobRequest) -> SubmitResult:
    """Submit for the current client; a full queue is 503, a reused Idempotency-Key 422."""
    client = current_client()
    try:
        # a created job's audit row goes into the job's own transaction (recorded as 202: the job was accepted)
        result = submit_job(runtime(), client.name, job_request, max_queued=client.max_queued,
                            audit=audit_entry(client.name, status=202))
    except QueueFullError as exc:
        raise ServiceUnavailableError(
            f"The queue is full ({exc.queued} jobs waiting, the maximum is {exc.limit}); "
            f"retry after {exc.retry_after} s.",
            retry_after=exc.retry_after,
            error="queue_full",
        ) from None
    except IdempotencyKeyReusedError as exc:
        raise UnprocessableError(
            f"This Idempotency-Key was already used for a different request (job {exc.existing.job_id}); "
            "use a new key for a new request.",
            error="idempotency_key_reused",
        ) from None
    g.audit_job_id = result.job.job_id  # the audit trail records the submit whatever the answer is
    g.audit_recorded = result.audited
    return result
