"""SQLAlchemy models. The SQL tables are the record of truth; Redis is only transport."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Job states (SPEC.md "Job status").
QUEUED = "queued"
SCHEDULED = "scheduled"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
FINAL_STATES = frozenset({COMPLETED, FAILED, CANCELLED})
ACTIVE_STATES = frozenset({QUEUED, SCHEDULED, PROCESSING})


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, on every backend (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of every model."""


class JobRecord(Base):
    """One PDF job: the request, its state and its result (`pdf_job_results`)."""

    __tablename__ = "pdf_job_results"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_name: Mapped[str] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(255))
    product_id: Mapped[str] = mapped_column(String(255))
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    phase: Mapped[str | None] = mapped_column(String(255))
    request_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    callback_url: Mapped[str | None] = mapped_column(Text)
    failure_callback_url: Mapped[str | None] = mapped_column(Text)
    run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    # Set while the job is active, cleared when it ends: the unique index makes a second active job
    # for the same client + code + product impossible, even under concurrent submits.
    active_key: Mapped[str | None] = mapped_column(String(700), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_message: Mapped[str | None] = mapped_column(Text)
    storage_backend: Mapped[str | None] = mapped_column(String(16))
    file_path: Mapped[str | None] = mapped_column(Text)
    file_size: Mapped[int | None] = mapped_column(Integer)
    google_drive_link: Mapped[str | None] = mapped_column(Text)
    file_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # HOST_NAME of the worker that stored the PDF: a local-disk file is only on that host.
    stored_by_host: Mapped[str | None] = mapped_column(String(255))
    processing_ms: Mapped[int | None] = mapped_column(Integer)
    # "pending" while the MongoDB record of the outcome still has to be written (outbox).
    mongo_status: Mapped[str | None] = mapped_column(String(16))
    # A run of a recurring schedule: the schedule and the tick it is for. Their unique index makes a
    # second row for the same tick impossible, whichever scheduler process or host inserts it.
    schedule_id: Mapped[str | None] = mapped_column(String(64))
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("client_name", "idempotency_key", name="uq_job_client_idempotency"),
        Index("ix_job_status_updated", "status", "updated_at"),
        Index("ix_job_client_created", "client_name", "created_at"),
        # MAX_QUEUED_PER_CLIENT: a submit counts the client's queued and scheduled jobs.
        Index("ix_job_client_status", "client_name", "status"),
        Index("ix_job_code_product", "code", "product_id"),
        Index("ix_job_created", "created_at"),
        Index("ix_job_completed", "completed_at"),
        Index("ix_job_mongo_status", "mongo_status", "completed_at"),
        Index("ux_job_schedule_tick", "schedule_id", "scheduled_for", unique=True),
    )

    @property
    def is_final(self) -> bool:
        """Whether the job has reached completed, failed or cancelled."""
        return self.status in FINAL_STATES


class ApiClient(Base):
    """An API client created with the CLI (clients from API_CLIENTS live in settings only)."""

    __tablename__ = "api_clients"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    webhook_secret: Mapped[str] = mapped_column(String(255))
    callback_auth_header_name: Mapped[str | None] = mapped_column(String(255))
    callback_auth_header_value: Mapped[str | None] = mapped_column(Text)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A rotated-out key keeps working until previous_key_expires_at (the grace period).
    previous_key_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    previous_key_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A rotated-out webhook secret signs beside the new one until previous_secret_expires_at.
    previous_webhook_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # None: RATE_LIMIT and MAX_QUEUED_PER_CLIENT apply.
    rate_limit: Mapped[str | None] = mapped_column(String(100))
    max_queued: Mapped[int | None] = mapped_column(Integer)
    # A revoked client stays (the audit trail names it) but can never be enabled again.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """One state-changing call: who (client), what (action, job), when and from where."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    client_name: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    # GET /api/audit pages newest first by id, filtered by client, action or job.
    __table_args__ = (
        Index("ix_audit_client", "client_name", "id"),
        Index("ix_audit_action", "action", "id"),
        Index("ix_audit_job", "job_id", "id"),
    )


# Webhook delivery states.
DELIVERY_PENDING = "pending"
DELIVERY_DELIVERED = "delivered"
DELIVERY_FAILED = "failed"


class WebhookDelivery(Base):
    """The outbox row of one final webhook: written in the transaction that ends the job."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(64), index=True)
    webhook_id: Mapped[str] = mapped_column(String(64), unique=True)
    event: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    # The exact bytes signed and sent on every attempt, so a retry is byte-identical.
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DELIVERY_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_response_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_delivery_status_next", "status", "next_attempt_at"),)


class WebhookAttempt(Base):
    """One HTTP attempt of a webhook delivery, kept for the record."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(Integer, index=True)
    attempt_number: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)


# What a schedule does with runs missed while no scheduler ran (SPEC.md "POST /api/schedules").
MISSED_RUN_ONCE = "run_once"
MISSED_SKIP = "skip"


class Schedule(Base):
    """A recurring job: a cron expression in a time zone and the submit body each run is made from."""

    __tablename__ = "schedules"

    schedule_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_name: Mapped[str] = mapped_column(String(100))
    cron: Mapped[str] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64))
    # The submit body (validated as a submit when stored), camelCase as the API takes it.
    job: Mapped[dict[str, Any]] = mapped_column(JSON)
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    missed: Mapped[str] = mapped_column(String(16), default=MISSED_RUN_ONCE)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # The next tick to run; None once `end_at` is passed (the schedule has ended) or while paused.
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_job_id: Mapped[str | None] = mapped_column(String(64))
    run_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_schedule_next_run", "next_run_at"),
        Index("ix_schedule_client_created", "client_name", "created_at"),
    )
