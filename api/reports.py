"""Submitting report jobs: one at a time, or many in one batch."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, g, jsonify
from flask.typing import ResponseReturnValue

from api.audit import audit_entry
from api.auth import current_client, require_client
from api.batch import parse_items, read_items
from api.errors import ApiError, ServiceUnavailableError, UnprocessableError
from api.extension import runtime
from api.requests import idempotency_key_header, parse_job_request
from api.serialize import accepted_body, batch_body
from jobs.batch import BatchEntry, Outcome, submit_batch
from jobs.batch_queue import BatchQueueFullError
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
        raise key_reused_error(exc) from None
    g.audit_job_id = result.job.job_id  # the audit trail records the submit whatever the answer is
    g.audit_recorded = result.audited
    return result


def key_reused_error(exc: IdempotencyKeyReusedError) -> UnprocessableError:
    """The 422 of an Idempotency-Key sent again with another request."""
    return UnprocessableError(
        f"This Idempotency-Key was already used for a different request (job {exc.existing.job_id}); "
        "use a new key for a new request.",
        error="idempotency_key_reused",
        details=[{"field": "Idempotency-Key", "message": "was used for a different request"}],
    )


@bp.post("/generate-batch")
@require_client
def submit_report_batch() -> ResponseReturnValue:
    """Accept up to BATCH_MAX_ITEMS jobs at once: 200 with each item's job (or error) in request order."""
    rt = runtime()
    parsed = parse_items(read_items(rt.settings), idempotency_key_header())
    valid = [item for item in parsed if isinstance(item, JobRequest)]
    done = iter(batch_or_refuse(valid) if valid else [])
    answers: list[BatchEntry | ApiError] = []
    for item in parsed:
        if isinstance(item, JobRequest):
            outcome = next(done)
            item = key_reused_error(outcome) if isinstance(outcome, IdempotencyKeyReusedError) else outcome
        answers.append(item)
    return jsonify(batch_body(answers))


def batch_or_refuse(requests: list[JobRequest]) -> list[Outcome]:
    """Submit a batch for the current client; 503 when its queued jobs do not fit in the queue."""
    try:
        client = current_client()
        return submit_batch(runtime(), client.name, requests, max_queued=client.max_queued)
    except BatchQueueFullError as exc:
        if exc.adding > exc.limit:  # no wait makes it fit
            raise UnprocessableError(
                f"This batch adds {exc.adding} queued jobs, more than the queue holds (MAX_QUEUE_SIZE {exc.limit}); "
                f"send at most {exc.limit} items per batch.", error="batch_exceeds_queue",
                details=[{"field": "items", "message": f"must add at most {exc.limit} queued jobs"}]) from None
        room = max(0, exc.limit - exc.queued)
        raise ServiceUnavailableError(
            f"The queue has room for {room} more jobs ({exc.queued} waiting, the maximum is {exc.limit}) and this "
            f"batch adds {exc.adding}; nothing was accepted. Retry after {exc.retry_after} s, or send fewer items.",
            retry_after=exc.retry_after,
            error="queue_full",
        ) from None
