"""Webhook callbacks of a job: redelivery."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from api.auth import require_client
from api.errors import ConflictError
from api.extension import runtime
from api.jobs import load_job
from api.serialize import redelivery_body
from jobs.webhook_relay import DeliveryBusyError, NoCallbackError, redeliver

bp = Blueprint("callbacks", __name__, url_prefix="/api/jobs")


@bp.post("/<job_id>/callbacks/redeliver")
@require_client
def redeliver_callback(job_id: str) -> ResponseReturnValue:
    """Send the job's final webhook again: a new attempt with the same webhook-id, now."""
    job = load_job(job_id)
    if not job.is_final:
        raise ConflictError(
            f"Job {job_id} is {job.status}; its webhook is sent when it ends, and can be redelivered after that.",
            error="not_final",
        )
    try:
        delivery = redeliver(runtime(), job_id)
    except NoCallbackError:
        raise ConflictError(
            f"Job {job_id} has no callback URL for its outcome ({job.status}), so there is nothing to redeliver.",
            error="no_callback",
        ) from None
    except DeliveryBusyError:
        raise ConflictError(
            f"An attempt of the webhook of job {job_id} is queued or being sent right now; "
            "see GET /api/jobs/<id> for its result, and retry in a few seconds if it fails.",
            error="callback_in_progress",
        ) from None
    return jsonify(redelivery_body(job, delivery)), 202
