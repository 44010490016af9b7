"""Queries of webhook deliveries (the outbox)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import WebhookDelivery


def latest_for_job(session: Session, job_id: str) -> WebhookDelivery | None:
    """The newest webhook delivery of a job, or None."""
    return session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.job_id == job_id).order_by(WebhookDelivery.id.desc()).limit(1)
    )
