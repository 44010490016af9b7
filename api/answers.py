"""Pydantic models of every JSON answer: api/serialize.py builds answers through them, the OpenAPI document
shows their schemas, so the two cannot drift apart."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

JobState = Literal["queued", "scheduled", "processing", "completed", "failed", "cancelled"]
Priority = Literal["high", "normal", "low"]
# Instants are sent as callbacks.payloads.iso() writes them (UTC, milliseconds, Z).
Instant = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
When = Instant | None
# Keeps an int an int in the answer (a float field would send 101 as 101.0).
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]


class Answer(BaseModel):
    """Base of the answer models: no field the document does not list."""

    model_config = ConfigDict(extra="forbid")


class FieldError(BaseModel):
    """One entry of an error's details: the field and what is wrong with it (some name a job_id too)."""

    model_config = ConfigDict(extra="allow")

    field: str
    message: str


class ErrorBody(Answer):
    """Every error answer (SPEC.md)."""

    error: str = Field(description="Machine-readable code, e.g. validation_error, queue_full")
    message: str = Field(description="What is wrong and how to fix it")
    details: list[FieldError]


class JobAccepted(Answer):
    """A submitted (or re-queued) job; its URL is also in the Location header."""

    job_id: str
    status: JobState
    estimated_completion: When
    position_in_queue: int | None = Field(description="Jobs ahead, counting higher-priority queues")
    status_url: str


class CallbackStatus(Answer):
    """The final webhook of a job: waiting (not sent yet), pending, delivered or failed."""

    status: Literal["waiting", "pending", "delivered", "failed"]
    attempts: int
    last_response_code: int | None
    last_error: str | None
    webhook_id: str | None = Field(description="The same on every attempt, so receivers can drop duplicates")
    url: str | None


class JobFields(Answer):
    """What every representation of a job carries."""

    job_id: str
    code: str
    productId: str  # noqa: N815
    priority: Priority
    status: JobState
    progress: int = Field(ge=0, le=100)
    created_at: Instant
    run_at: When
    started_at: When
    completed_at: When
    retry_count: int
    error: str | None
    download_url: str | None = Field(description="Set once the job is completed, until the PDF is removed")
    status_url: str
    schedule_id: str | None = Field(description="The schedule this job is a run of; null for submitted jobs")


class JobSummary(JobFields):
    """One job in a list."""

    client: str


class JobStatus(JobFields):
    """One job with its queue position, estimate, result and webhook."""

    phase: str | None
    estimated_completion: When
    position_in_queue: int | None
    google_drive_link: str | None
    file_size: int | None
    callback: CallbackStatus | None = Field(description="null when the job has no callback URL")


class JobList(Answer):
    """A page of jobs, newest first."""

    jobs: list[JobSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")
    limit: int


class Redelivery(Answer):
    """A redelivery was scheduled."""

    job_id: str
    callback: CallbackStatus


class QueueLengths(Answer):
    """Jobs waiting per priority queue."""

    high: int
    normal: int
    low: int


class WorkerCounts(Answer):
    """Live PDF workers by state."""

    total: int
    busy: int
    idle: int


class Workers(WorkerCounts):
    """Live PDF workers by state (a dead worker stops counting within STALE_JOB_GRACE), and per host."""

    by_host: dict[str, WorkerCounts]


class LastHour(Answer):
    """Outcomes and processing times of the jobs that ended in the last hour."""

    completed: int
    failed: int
    cancelled: int
    failure_rate: float
    avg_processing_seconds: float | None
    p95_processing_seconds: float | None


class Alert(Answer):
    """An active alert: what crossed which threshold."""

    name: Literal["queue_length", "failure_rate", "avg_processing_time", "no_workers", "redis_unavailable"]
    message: str
    value: Number | None
    threshold: Number | None


class QueueStats(Answer):
    """The whole service's queues, workers and last hour; Redis figures are null while Redis is down."""

    scheduled: int
    processing: int
    queued_in_sql: int
    last_hour: LastHour
    queues: QueueLengths | None
    webhook_queue: int | None
    retry_waiting: int | None
    workers: Workers | None
    schedules_active: int = Field(description="Recurring schedules that will run again (not paused, not ended)")
    next_schedule_run_at: When = Field(description="The earliest next run among them")
    alerts: list[Alert]
    generated_at: Instant


class TemplateInfo(Answer):
    """One product (template) and the JSON Schema of its `data`."""

    productId: str  # noqa: N815
    title: str
    kind: Literal["report", "form"]
    data_schema: dict[str, Any] = Field(alias="schema", description="JSON Schema of the request's `data`")


class BrokenTemplate(Answer):
    """A template that failed to load: its product id answers 422 template_broken, the others work."""

    productId: str  # noqa: N815
    file: str = Field(description="The file that is wrong, relative to its templates directory")
    line: int | None = Field(None, description="Where in the file, when known")
    column: int | None = None
    error: str = Field(description="What is wrong")


class TemplateList(Answer):
    """Every product, and the templates that failed to load."""

    templates: list[TemplateInfo]
    count: int
    broken: list[BrokenTemplate] = Field(description="Templates that failed to load (logged too)")


class Health(Answer):
    """The process is alive."""

    status: Literal["ok"]


class Readiness(Answer):
    """Whether Redis and SQL answer; each check is "ok" or "unavailable: <error type>"."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, str]


class BatchItemAccepted(Answer):
    """An item of a batch that has its job: a new one (status_code 202) or an earlier one for the same request
    (200: the item's Idempotency-Key, or the same code + productId still active). The fields of a submit's answer
    follow `status_code`."""

    index: int = Field(description="The item's position in the request's `items`, from 0")
    result: Literal["accepted"]
    status_code: Literal[200, 202]
    job_id: str
    status: JobState
    estimated_completion: When
    position_in_queue: int | None = Field(description="Jobs ahead, counting higher-priority queues")
    status_url: str


class BatchItemRejected(Answer):
    """An item of a batch that has no job: the error a single submit of it would have answered."""

    index: int = Field(description="The item's position in the request's `items`, from 0")
    result: Literal["rejected"]
    status_code: Literal[400, 422] = Field(description="400: invalid fields (details name each); 422: unknown "
                                                       "productId, or an Idempotency-Key reused with another body")
    error: str = Field(description="Machine-readable code, e.g. validation_error, unknown_product")
    message: str = Field(description="What is wrong and how to fix it")
    details: list[FieldError] = Field(description="The item's fields that are wrong (named within the item)")


BatchItem = Annotated[BatchItemAccepted | BatchItemRejected, Field(discriminator="result")]


class BatchAccepted(Answer):
    """The outcome of every item of a batch, in request order."""

    accepted: int = Field(description="Items that have a job")
    rejected: int = Field(description="Items refused; each says why")
    items: list[BatchItem]


class Schedule(Answer):
    """A recurring job: a run (a normal job with `schedule_id`) at each tick of `cron` in `timezone`."""

    schedule_id: str
    state: Literal["active", "paused", "ended"]
    cron: str = Field(description="5 fields (minute hour day month weekday), or 6 with seconds last")
    timezone: str = Field(description="IANA time zone the cron expression is read in")
    job: dict[str, Any] = Field(description="The submit body each run is made from")
    start: When = Field(description="No run before this")
    end: When = Field(description="No run after this; the schedule has then ended")
    missed: Literal["run_once", "skip"] = Field(description="What runs missed while no scheduler ran become: "
                                                           "one run now, or none")
    paused: bool
    next_run_at: When = Field(description="null while paused or once ended")
    last_run_at: When
    last_job_id: str | None
    run_count: int
    client: str
    created_at: Instant
    updated_at: Instant


class ScheduleList(Answer):
    """A page of schedules, newest first."""

    schedules: list[Schedule]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")
    limit: int


class AuditEventAnswer(Answer):
    """One state-changing call: who (client), what (action, job), when, from where, and its answer."""

    id: int
    at: Instant
    client: str = Field(description="The client that called, or `cli` for operator commands")
    action: str = Field(description="job.submit, job.cancel, job.retry, job.redeliver, client.create, "
                        "client.disable, ... (other endpoints: their name)")
    job_id: str | None
    source: str | None = Field(description="The caller's address (cli@<host> for operator commands)")
    request_id: str | None = Field(description="The X-Request-Id of the call (in the access log too)")
    status: int | None = Field(description="HTTP status of the answer")
    detail: dict[str, Any] | None


class AuditPage(Answer):
    """A page of audit events, newest first."""

    events: list[AuditEventAnswer]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")
    limit: int


MODELS: tuple[type[BaseModel], ...] = (
    ErrorBody, JobAccepted, JobStatus, JobList, Redelivery, QueueStats, TemplateInfo, TemplateList, Health,
    Readiness, BatchAccepted, Schedule, ScheduleList, AuditPage,
)
