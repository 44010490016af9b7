"""Answers as the JSON of SPEC.md, each built through its model in api/answers.py (what the OpenAPI document shows)."""

from __future__ import annotations

from typing import Any

from flask import url_for

from api.answers import (
    CallbackStatus,
    JobAccepted,
    JobList,
    JobStatus,
    JobSummary,
    QueueStats,
    Redelivery,
    TemplateInfo,
    TemplateList,
)
from callbacks.payloads import iso
from render import Template
from store.models import COMPLETED, JobRecord, WebhookDelivery


def job_links(job: JobRecord) -> dict[str, str]:
    """Relative URLs of the job's status and download."""
    return {"status_url": status_url(job), "download_url": url_for("jobs.download_job_pdf", job_id=job.job_id)}


def status_url(job: JobRecord) -> str:
    """Relative URL of the job's status."""
    return url_for("jobs.get_job_status", job_id=job.job_id)


def accepted_body(job: JobRecord, position: int | None, eta: Any) -> dict[str, Any]:
    """The 202 body of a submit."""
    return JobAccepted(
        job_id=job.job_id,
        status=job.status,
        estimated_completion=iso(eta),
        position_in_queue=position,
        status_url=status_url(job),  # no download URL in this answer: not built
    ).model_dump()


def job_fields(job: JobRecord) -> dict[str, Any]:
    """The fields every job representation shares (list items and the status body), unchecked: see the callers."""
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
    return JobStatus(
        **job_fields(job),
        phase=job.phase,
        estimated_completion=iso(eta),
        position_in_queue=position,
        google_drive_link=job.google_drive_link,
        file_size=job.file_size,
        callback=callback_status(job, delivery),
    ).model_dump()


def job_list_body(jobs: list[JobRecord], next_cursor: str | None, limit: int) -> dict[str, Any]:
    """The body of GET /api/jobs: a page of jobs and the cursor of the next one."""
    summaries = [JobSummary(**job_fields(job), client=job.client_name) for job in jobs]
    return JobList(jobs=summaries, next_cursor=next_cursor, limit=limit).model_dump()


def callback_status(job: JobRecord, delivery: WebhookDelivery | None) -> CallbackStatus | None:
    """`callback: {status, attempts, last_response_code, ...}`; None when the job has no callback URL."""
    if delivery is not None:
        return CallbackStatus.model_validate(delivery, from_attributes=True)
    if not (job.callback_url or job.failure_callback_url):
        return None
    return CallbackStatus(status="waiting", attempts=0, last_response_code=None, last_error=None, webhook_id=None,
                          url=None)


def redelivery_body(job: JobRecord, delivery: WebhookDelivery) -> dict[str, Any]:
    """The 202 body of a webhook redelivery."""
    return Redelivery(job_id=job.job_id, callback=callback_status(job, delivery)).model_dump()


def queue_stats_body(stats: dict[str, Any]) -> dict[str, Any]:
    """The body of GET /api/queue/stats, from jobs.stats.queue_stats."""
    return QueueStats.model_validate(stats | {"generated_at": iso(stats["generated_at"])}).model_dump()


def template_body(template: Template) -> dict[str, Any]:
    """One product: id, title, kind and the JSON Schema of its data."""
    return TemplateInfo.model_validate(template.describe()).model_dump(by_alias=True)


def template_list_body(templates: list[Template]) -> dict[str, Any]:
    """Every product, as GET /api/templates answers."""
    infos = [TemplateInfo.model_validate(template.describe()) for template in templates]
    return TemplateList(templates=infos, count=len(infos)).model_dump(by_alias=True)
