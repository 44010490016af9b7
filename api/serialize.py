"""Answers as the JSON of SPEC.md, each built through its model in api/answers.py (what the OpenAPI document shows)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import url_for

from api.answers import (
    BatchAccepted,
    BatchItemAccepted,
    BatchItemRejected,
    BrokenTemplate,
    CallbackStatus,
    JobAccepted,
    JobList,
    JobStatus,
    JobSummary,
    QueueStats,
    Redelivery,
    ScheduleList,
    TemplateInfo,
    TemplateList,
)
from api.answers import Schedule as ScheduleAnswer
from api.errors import ApiError
from callbacks.payloads import iso
from jobs.batch import BatchEntry
from render import BrokenTemplateError, Template
from store.models import COMPLETED, JobRecord, Schedule, WebhookDelivery


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
        "schedule_id": job.schedule_id,
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
    instants = {name: iso(stats[name]) for name in ("generated_at", "next_schedule_run_at")}
    return QueueStats.model_validate(stats | instants).model_dump()


def template_body(template: Template) -> dict[str, Any]:
    """One product: id, title, kind and the JSON Schema of its data."""
    return TemplateInfo.model_validate(template.describe()).model_dump(by_alias=True)


def template_list_body(templates: list[Template], broken: Sequence[BrokenTemplateError] = ()) -> dict[str, Any]:
    """Every product, and the broken templates with file, line and reason, as GET /api/templates answers."""
    infos = [TemplateInfo.model_validate(template.describe()) for template in templates]
    failed = [BrokenTemplate(productId=error.product_id, file=error.file, line=error.line, column=error.column,
                             error=error.reason) for error in broken]
    return TemplateList(templates=infos, count=len(infos), broken=failed).model_dump(by_alias=True,
                                                                                      exclude_none=True)


_JOB_ID = "JOB_ID"  # a stand-in job id: ids are letters, digits and "_", which URLs carry unquoted


def batch_body(items: list[BatchEntry | ApiError]) -> dict[str, Any]:
    """The 200 body of a batch submit: each item's job or error, in request order."""
    answers: list[BatchItemAccepted | BatchItemRejected] = []
    # One URL built, the others by substitution: url_for per item costs more than the item's row in SQL.
    url = url_for("jobs.get_job_status", job_id=_JOB_ID)
    for index, item in enumerate(items):
        if isinstance(item, ApiError):
            answers.append(BatchItemRejected(result="rejected", index=index, status_code=item.status_code,
                                             **item.to_dict()))
            continue
        job = item.job
        answers.append(BatchItemAccepted(
            result="accepted", index=index, status_code=202 if item.created else 200, job_id=job.job_id,
            status=job.status, estimated_completion=iso(item.eta), position_in_queue=item.position,
            status_url=url.replace(_JOB_ID, job.job_id)))
    accepted = sum(isinstance(answer, BatchItemAccepted) for answer in answers)
    return BatchAccepted(accepted=accepted, rejected=len(answers) - accepted, items=answers).model_dump()


def schedule_state(schedule: Schedule) -> str:
    """active, paused, or ended (no run after its end)."""
    if schedule.paused:
        return "paused"
    return "ended" if schedule.next_run_at is None else "active"


def schedule_body(schedule: Schedule) -> dict[str, Any]:
    """One schedule, as its endpoints answer it."""
    return schedule_model(schedule).model_dump()


def schedule_model(schedule: Schedule) -> ScheduleAnswer:
    """The answer model of one schedule."""
    return ScheduleAnswer(
        schedule_id=schedule.schedule_id, state=schedule_state(schedule), cron=schedule.cron,
        timezone=schedule.timezone, job=schedule.job, start=iso(schedule.start_at), end=iso(schedule.end_at),
        missed=schedule.missed, paused=schedule.paused, next_run_at=iso(schedule.next_run_at),
        last_run_at=iso(schedule.last_run_at), last_job_id=schedule.last_job_id, run_count=schedule.run_count,
        client=schedule.client_name, created_at=iso(schedule.created_at), updated_at=iso(schedule.updated_at))


def schedule_list_body(schedules: list[Schedule], next_cursor: str | None, limit: int) -> dict[str, Any]:
    """The body of GET /api/schedules."""
    return ScheduleList(schedules=[schedule_model(schedule) for schedule in schedules], next_cursor=next_cursor,
                        limit=limit).model_dump()
