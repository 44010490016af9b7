"""Job records as the JSON of SPEC.md."""

from __future__ import annotations

from typing import Any

from flask import url_for

from callbacks.payloads import iso
from store.models import COMPLETED, JobRecord, WebhookDelivery


def job_links(job: JobRecord) -> dict[str, str]:
    """Relative URLs of the job's status and download."""
    return {"status_url": status_url(job), "download_url": url_for("jobs.download_job_pdf", job_id=job.job_id)}


def status_url(job: JobRecord) -> str:
    """Relative URL of the job's status."""
    return url_for("jobs.get_job_status", job_id=job.job_id)


def accepted_body(job: JobRecord, position: int | None, eta: Any) -> dict[str, Any]:
    """The 202 body of a submit."""
    return {
        "job_id": job.job_id,
        "status": job.status,
        "estimated_completion": iso(eta),
        "position_in_queue": position,
        "status_url": status_url(job),  # no download URL in this answer: not built (url_for ~10 us)
    }


def job_fields(job: JobRecord) -> dict[str, Any]:
    """The fields every job representation shares (list items and the status body)."""
    links = job_links(job)
    downloadable = job.status == COMPLETED and not job.file_deleted_at
    return {
        "job_id": job.job_id,
        "code": job.code,
        "productId": job.product_id,
        "priority": job.priority,
        "status": job.status,
        "progress": job.progress,
        "created_at": iso(job.created_at),
        "run_at": iso(job.run_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at),
        "retry_count": job.retry_count,
        "error": job.error_message,
        "download_url": links["download_url"] if downloadable else None,
        "status_url": links["status_url"],
    }


def job_status_body(
    job: JobRecord, *, position: int | None, eta: Any, delivery: WebhookDelivery | None
) -> dict[str, Any]:
    """The body of GET /api/jobs/<id>."""
    return {
        **job_fields(job),
        "phase": job.phase,
        "estimated_completion": iso(eta),
        "position_in_queue": position,
        "google_drive_link": job.google_drive_link,
        "file_size": job.file_size,
        "callback": callback_body(job, delivery),
    }


def callback_body(job: JobRecord, delivery: WebhookDelivery | None) -> dict[str, Any] | None:
    """`callback: {status, attempts, last_response_code}`; None when the job has no callback URL."""
    if delivery is None:
        if not (job.callback_url or job.failure_callback_url):
            return None
        return {"status": "waiting", "attempts": 0, "last_response_code": None, "webhook_id": None}
    return {
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_response_code": delivery.last_response_code,
        "last_error": delivery.last_error,
        "webhook_id": delivery.webhook_id,
        "url": delivery.url,
    }
