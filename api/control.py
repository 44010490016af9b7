"""Cancel and retry a job."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from api.auth import require_client
from api.errors import ConflictError, NotFoundError
from api.extension import runtime
from api.jobs import load_job
from api.serialize import accepted_body, job_status_body
from jobs import control
from jobs.eta import estimate
from store import deliveries as delivery_store
from store.jobs import DuplicateJobError

bp = Blueprint("control", __name__, url_prefix="/api/jobs")


@bp.post("/<job_id>/cancel")
@require_client
def cancel_job(job_id: str) -> ResponseReturnValue:
    """Cancel a queued or scheduled job, stop a running one; 409 when it has already ended."""
    load_job(job_id)
    rt = runtime()
    try:
        job = control.cancel_job(rt, job_id)
    except control.JobStateError as exc:
        raise ConflictError(f"{exc}.", error="not_cancellable") from None
    except LookupError:
        raise NotFoundError(f"No job {job_id!r}.") from None
    with rt.session() as session:
        delivery = delivery_store.latest_for_job(session, job_id)
    return jsonify(job_status_body(job, position=None, eta=None, delivery=delivery))


@bp.post("/<job_id>/retry")
@require_client
def retry_job(job_id: str) -> ResponseReturnValue:
    """Re-queue a failed or cancelled job under the same id: 202 as a submit."""
    load_job(job_id)
    rt = runtime()
    try:
        job = control.retry_job(rt, job_id)
    except control.JobStateError as exc:
        raise ConflictError(f"{exc}.", error="not_retryable") from None
    except DuplicateJobError as exc:
        other = exc.existing.job_id
        raise ConflictError(
            f"Job {other} for the same code and productId is still {exc.existing.status}; "
            "wait for it to end (or cancel it) before retrying this one.",
            error="active_job_exists",
            details=[{"field": "job_id", "message": f"active job {other}", "job_id": other}],
        ) from None
    except LookupError:
        raise NotFoundError(f"No job {job_id!r}.") from None
    position, eta = estimate(rt, job)
    body = accepted_body(job, position, eta)
    return jsonify(body), 202, {"Location": body["status_url"]}
