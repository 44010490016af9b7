"""State changes of webhook deliveries (the outbox): hand-over, claim, record, reopen.

Every change is a conditional UPDATE whose WHERE clause restates the state it expects, so several
relays and webhook workers can run at once: the caller whose UPDATE matched the row goes on, the
others see rowcount 0 and leave it alone. A pending delivery is in one of these states:

- waiting: handed_at NULL, next_attempt_at in the future (a retry is scheduled);
- due:     handed_at NULL, next_attempt_at <= now;
- handed:  handed_at set, next_attempt_at <= now (an RQ job is on the `webhooks` queue);
- sending: handed_at set, next_attempt_at = claim time + lease (a worker is making the attempt).

A handed or sending delivery whose handed_at is older than the lease is lost (Redis flushed, worker
killed) and becomes due again: the relay hands it over once more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from store.models import DELIVERY_PENDING, JobRecord, WebhookAttempt, WebhookDelivery

# WebhookAttempt.outcome of the marker row left by a redelivery request: attempts after it get
# the whole retry schedule again.
REDELIVER = "redeliver"


@dataclass(frozen=True)
class Claim:
    """One attempt a worker has claimed: what it sends, and its attempt number."""

    delivery_id: int
    job_id: str
    client_name: str | None
    webhook_id: str
    url: str
    body: str
    attempt_number: int


@dataclass(frozen=True)
class AttemptRecord:
    """What an attempt did and what the delivery becomes."""

    started_at: datetime
    outcome: str
    status_code: int | None
    duration_ms: int | None
    error: str | None
    response_excerpt: str | None
    new_status: str
    next_attempt_at: datetime | None
    delivered_at: datetime | None = None


def _lost(now: datetime, lease: float):  # noqa: ANN202 - a SQL expression
    return WebhookDelivery.handed_at < now - timedelta(seconds=lease)


def due_for_hand_over(session: Session, now: datetime, lease: float, limit: int) -> list[tuple[int, int]]:
    """(id, attempts) of due deliveries never handed over, then of those whose hand-over was lost."""
    base = (
        select(WebhookDelivery.id, WebhookDelivery.attempts)
        .where(WebhookDelivery.status == DELIVERY_PENDING, WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    fresh = session.execute(base.where(WebhookDelivery.handed_at.is_(None))).all()
    lost = session.execute(base.where(_lost(now, lease))).all()
    return [(row.id, row.attempts) for row in (*fresh, *lost)]


def attempts_of(session: Session, delivery_id: int) -> int | None:
    """How many attempts a delivery has had, or None if it does not exist."""
    return session.scalar(select(WebhookDelivery.attempts).where(WebhookDelivery.id == delivery_id))


def mark_handed(session: Session, delivery_id: int, attempts: int, now: datetime, lease: float) -> bool:
    """Claim the hand-over of a due delivery (not committed); False when someone else has it."""
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == DELIVERY_PENDING,
            WebhookDelivery.attempts == attempts,
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.handed_at.is_(None), _lost(now, lease)),
        )
        .values(handed_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def release_hands(session: Session, delivery_ids: Sequence[int], handed_at: datetime) -> None:
    """Undo hand-overs that did not reach Redis, so the next relay run retries them (committed)."""
    if not delivery_ids:
        return
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(list(delivery_ids)), WebhookDelivery.handed_at == handed_at)
        .values(handed_at=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def claim_attempt(session: Session, delivery_id: int, now: datetime, lease: float) -> Claim | None:
    """Claim the next attempt of a due delivery (committed); None if it is not due or taken."""
    row = session.execute(
        select(WebhookDelivery, JobRecord.client_name)
        .outerjoin(JobRecord, JobRecord.job_id == WebhookDelivery.job_id)
        .where(WebhookDelivery.id == delivery_id)
    ).first()
    if row is None:
        return None
    delivery, client_name = row
    if delivery.status != DELIVERY_PENDING or delivery.next_attempt_at is None or delivery.next_attempt_at > now:
        session.rollback()
        return None
    seen = delivery.attempts
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == DELIVERY_PENDING,
            WebhookDelivery.attempts == seen,
            WebhookDelivery.next_attempt_at <= now,
        )
        .values(attempts=seen + 1, handed_at=now, next_attempt_at=now + timedelta(seconds=lease), updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        return None
    session.commit()
    return Claim(delivery_id, delivery.job_id, client_name, delivery.webhook_id, delivery.url, delivery.body, seen + 1)


def record_attempt(session: Session, claim: Claim, record: AttemptRecord) -> bool:
    """Store the attempt row and the delivery's new state in one transaction.

    Returns False when the claim was lost meanwhile (the attempt took longer than the lease and
    another worker went on): the attempt is kept for the record, the delivery is left alone.
    """
    session.add(
        WebhookAttempt(
            delivery_id=claim.delivery_id,
            attempt_number=claim.attempt_number,
            url=claim.url,
            started_at=record.started_at,
            duration_ms=record.duration_ms,
            status_code=record.status_code,
            outcome=record.outcome,
            error=record.error,
            response_excerpt=record.response_excerpt,
        )
    )
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == claim.delivery_id,
            WebhookDelivery.status == DELIVERY_PENDING,
            WebhookDelivery.attempts == claim.attempt_number,
        )
        .values(
            status=record.new_status,
            last_response_code=record.status_code,
            last_error=record.error,
            next_attempt_at=record.next_attempt_at,
            handed_at=None,
            delivered_at=record.delivered_at,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def retry_round_base(session: Session, delivery_id: int) -> int:
    """The attempt count at the latest redelivery request (0 if none): retries restart from it."""
    base = session.scalar(
        select(func.max(WebhookAttempt.attempt_number)).where(
            WebhookAttempt.delivery_id == delivery_id, WebhookAttempt.outcome == REDELIVER
        )
    )
    return base or 0


def reopen(session: Session, delivery: WebhookDelivery, now: datetime, lease: float) -> bool:
    """Make a delivery due now for a new attempt, unless one is queued or being sent (committed)."""
    busy = and_(
        WebhookDelivery.status == DELIVERY_PENDING,
        WebhookDelivery.handed_at.is_not(None),
        WebhookDelivery.handed_at >= now - timedelta(seconds=lease),
    )
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery.id, ~busy)
        .values(status=DELIVERY_PENDING, next_attempt_at=now, handed_at=None, delivered_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        return False
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id, attempt_number=delivery.attempts, url=delivery.url, started_at=now,
            outcome=REDELIVER,
        )
    )
    session.commit()
    return True


def insert_delivery(session: Session, values: dict[str, Any]) -> int:
    """Add a delivery row (not committed: it joins the transaction that ends the job); its id."""
    return session.execute(_INSERT_DELIVERY, values).scalar_one()


_INSERT_DELIVERY = insert(WebhookDelivery).returning(WebhookDelivery.id)
