"""Aggregate queries for queue stats and metrics: counts and processing times, on indexed columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from store.models import COMPLETED, JobRecord, WebhookAttempt, WebhookDelivery


@dataclass(frozen=True)
class ProcessingTimes:
    """Processing times of completed jobs: how many, mean and 95th percentile (milliseconds)."""

    count: int
    average_ms: float | None
    p95_ms: int | None


def ended_since(session: Session, since: datetime) -> dict[str, int]:
    """Jobs that reached each final state at or after `since` (index ix_job_completed)."""
    rows = session.execute(
        select(JobRecord.status, func.count())
        .where(JobRecord.completed_at >= since)
        .group_by(JobRecord.status)
    ).all()
    return {status: count for status, count in rows}


def count_in_state(session: Session, status: str) -> int:
    """Jobs currently in `status` (index ix_job_status_updated)."""
    return session.scalar(select(func.count()).select_from(JobRecord).where(JobRecord.status == status)) or 0


def processing_times_since(session: Session, since: datetime) -> ProcessingTimes:
    """Mean and p95 processing time of the jobs completed at or after `since`."""
    recent = (JobRecord.completed_at >= since, JobRecord.status == COMPLETED, JobRecord.processing_ms.is_not(None))
    count, average = session.execute(
        select(func.count(), func.avg(JobRecord.processing_ms)).where(*recent)
    ).one()
    if not count:
        return ProcessingTimes(0, None, None)
    rank = min(count - 1, max(0, -(-95 * count // 100) - 1))  # nearest-rank percentile
    p95 = session.scalar(
        select(JobRecord.processing_ms).where(*recent).order_by(JobRecord.processing_ms).offset(rank).limit(1)
    )
    return ProcessingTimes(int(count), float(average), p95)


def jobs_by_status(session: Session) -> Sequence[tuple[str, str, str, int]]:
    """(status, product_id, priority, count) over every job."""
    rows = session.execute(
        select(JobRecord.status, JobRecord.product_id, JobRecord.priority, func.count())
        .group_by(JobRecord.status, JobRecord.product_id, JobRecord.priority)
    ).all()
    return [(status, product, priority, count) for status, product, priority, count in rows]


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts (upper bounds in ms), sum and count of one product's processing times."""

    product_id: str
    buckets: list[tuple[float, int]]
    sum_ms: int
    count: int


def processing_histograms(session: Session, bounds_ms: Sequence[float]) -> list[Histogram]:
    """Processing-time histograms of completed jobs, per product, computed in one grouped query."""
    columns = [func.sum(case((JobRecord.processing_ms <= bound, 1), else_=0)) for bound in bounds_ms]
    rows = session.execute(
        select(JobRecord.product_id, func.count(), func.sum(JobRecord.processing_ms), *columns)
        .where(JobRecord.status == COMPLETED, JobRecord.processing_ms.is_not(None))
        .group_by(JobRecord.product_id)
    ).all()
    histograms = []
    for product, count, total, *cumulative in rows:
        buckets = [(bound, int(value or 0)) for bound, value in zip(bounds_ms, cumulative, strict=True)]
        histograms.append(Histogram(product, buckets, int(total or 0), int(count)))
    return histograms


def deliveries_by_status(session: Session) -> dict[str, int]:
    """Webhook deliveries per state (pending, delivered, failed)."""
    rows = session.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)).all()
    return {status: count for status, count in rows}


def attempts_by_outcome(session: Session) -> dict[str, int]:
    """Webhook HTTP attempts per outcome."""
    rows = session.execute(select(WebhookAttempt.outcome, func.count()).group_by(WebhookAttempt.outcome)).all()
    return {outcome: count for outcome, count in rows}
