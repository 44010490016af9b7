"""State changes of webhook deliveries (the outbox): hand-over, claim, record, reopen.

Every change is a conditional UPDATE whose WHERE clause restates the state it expects, so several
relays and webhook senders can run at once: the caller whose UPDATE matched the row goes on, the
others see rowcount 0 and leave it alone. A pending delivery is in one of these states:

- waiting: handed_at NULL, next_attempt_at in the future (a retry is scheduled);
- due:     handed_at NULL, next_attempt_at <= now;
- handed:  handed_at set, next_attempt_at <= now (its id is on the webhook sender's Redis list);
- sending: handed_at set, next_attempt_at = claim time + lease (a sender is making the attempt).

A delivery that `insert_delivery` adds when a job ends is written already in the sending state,
its first attempt claimed (the PDF worker pushes "<id>:1" and the sender takes that claim over with a
read, `held_claims`, instead of a write transaction of its own).

A handed or sending delivery whose handed_at is older than the lease is lost (Redis flushed, sender
killed) and becomes due again: the relay hands it over once more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, or_, select, update
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


def release_hands(
    session: Session, delivery_ids: Sequence[int], handed_at: datetime, *, claimed: int | None = None
) -> None:
    """Undo hand-overs that did not reach Redis, so the next relay run retries them (committed).

    `claimed`: the rows were written with that attempt already claimed (`insert_delivery`); the claim
    is undone too, and they are due at once.
    """
    if not delivery_ids:
        return
    statement = update(WebhookDelivery).where(
        WebhookDelivery.id.in_(list(delivery_ids)), WebhookDelivery.handed_at == handed_at
    )
    if claimed is None:
        statement = statement.values(handed_at=None)
    else:
        statement = statement.where(
            WebhookDelivery.attempts == claimed, WebhookDelivery.status == DELIVERY_PENDING
        ).values(handed_at=None, attempts=claimed - 1, next_attempt_at=handed_at)
    session.execute(statement.execution_options(synchronize_session=False))
    session.commit()


def claim_attempt(session: Session, delivery_id: int, now: datetime, lease: float) -> Claim | None:
    """Claim the next attempt of a due delivery (committed); None if it is not due or taken."""
    claims = claim_attempts(session, [delivery_id], now, lease)
    return claims[0] if claims else None


# The statements of the sender's hot path, built once: Core statements on the tables with bound
# parameters cost a fraction of building ORM statements per call; the per-job ones (the held claims'
# read, the record, the outbox row) run on a Connection, without a Session.
_D = WebhookDelivery.__table__.c
# What a claim needs of each delivery, with its job's client (whose secret signs the webhook).
_CLAIM_ROWS = select(
    _D.id, _D.job_id, _D.webhook_id, _D.url, _D.body, _D.attempts, JobRecord.__table__.c.client_name
).select_from(WebhookDelivery.__table__.outerjoin(JobRecord.__table__, JobRecord.__table__.c.job_id == _D.job_id))
_CANDIDATES = (
    _CLAIM_ROWS
    .where(
        _D.id.in_(bindparam("ids", expanding=True)),
        _D.status == DELIVERY_PENDING,
        _D.next_attempt_at <= bindparam("now"),
    )
    .order_by(_D.id)
)
_HELD = (
    _CLAIM_ROWS
    .where(
        _D.id.in_(bindparam("ids", expanding=True)),
        _D.status == DELIVERY_PENDING,
        _D.next_attempt_at >= bindparam("held_until"),
    )
    .order_by(_D.id)
)
_BY_ID = _CLAIM_ROWS.where(_D.id.in_(bindparam("ids", expanding=True))).order_by(_D.id)
_RENEW = (
    update(WebhookDelivery.__table__)
    .where(_D.id == bindparam("delivery_id"), _D.status == DELIVERY_PENDING, _D.attempts == bindparam("claimed"))
    .values(handed_at=bindparam("now"), next_attempt_at=bindparam("until"), updated_at=bindparam("now"))
)
_CLAIM = (
    update(WebhookDelivery.__table__)
    .where(
        _D.id == bindparam("delivery_id"),
        _D.status == DELIVERY_PENDING,
        _D.attempts == bindparam("seen"),
        _D.next_attempt_at <= bindparam("now"),
    )
    .values(attempts=bindparam("claimed"), handed_at=bindparam("now"), next_attempt_at=bindparam("until"),
            updated_at=bindparam("now"))
)
_RECORD = (
    update(WebhookDelivery.__table__)
    .where(_D.id == bindparam("delivery_id"), _D.status == DELIVERY_PENDING, _D.attempts == bindparam("claimed"))
    .values(status=bindparam("new_status"), last_response_code=bindparam("code"), last_error=bindparam("error_"),
            next_attempt_at=bindparam("next_at"), handed_at=None, delivered_at=bindparam("delivered"))
)


def claim_attempts(session: Session, delivery_ids: Sequence[int], now: datetime, lease: float) -> list[Claim]:
    """Claim the next attempt of each due delivery among `delivery_ids`, in one transaction (committed).

    Deliveries that are not due, not pending or taken by someone else are left out; an id given
    twice is claimed once.
    """
    until = now + timedelta(seconds=lease)
    claims = []
    # Read every row before the first UPDATE: an open SELECT would keep SQLite's read snapshot, and
    # turning that into a write after another process committed fails at once ("database is locked").
    for row in session.execute(_CANDIDATES, {"ids": list(set(delivery_ids)), "now": now}).all():
        claimed = row.attempts + 1
        params = {"delivery_id": row.id, "seen": row.attempts, "claimed": claimed, "now": now, "until": until}
        if session.execute(_CLAIM, params).rowcount == 1:
            claims.append(Claim(row.id, row.job_id, row.client_name, row.webhook_id, row.url, row.body, claimed))
    session.commit()
    return claims


def held_claims(
    engine: Engine, claimed: Mapping[int, int], now: datetime, min_left: float, lease: float
) -> list[Claim]:
    """Take over the claims already made for these deliveries ({id: attempt number}).

    A claim that holds for `min_left` more seconds is only read (the usual case: its entry was taken
    soon after the push). One that would run out sooner, because the list was backlogged, is renewed
    for `lease` seconds in the same transaction, as long as it is still the delivery's latest. A
    delivery that has ended, or whose attempt number moved on (claimed again after a lapse), is left out.
    """
    if not claimed:
        return []
    params = {"ids": list(claimed), "held_until": now + timedelta(seconds=min_left)}
    with engine.begin() as connection:
        rows = connection.execute(_HELD, params).mappings().all()
        claims = [_claim_of(row) for row in rows if row["attempts"] == claimed[row["id"]]]
        taken = {claim.delivery_id for claim in claims}
        short = {delivery_id: n for delivery_id, n in claimed.items() if delivery_id not in taken}
        return claims + (_renew_claims(connection, short, now, lease) if short else [])


def _renew_claims(
    connection: Connection, claimed: Mapping[int, int], now: datetime, lease: float
) -> list[Claim]:
    """Extend still-current claims by a whole lease; the renewed ones as Claims."""
    until = now + timedelta(seconds=lease)
    renewed = []
    for delivery_id, attempt in claimed.items():
        params = {"delivery_id": delivery_id, "claimed": attempt, "now": now, "until": until}
        if connection.execute(_RENEW, params).rowcount == 1:
            renewed.append(delivery_id)
    if not renewed:
        return []
    return [_claim_of(row) for row in connection.execute(_BY_ID, {"ids": renewed}).mappings()]


def _claim_of(row: Mapping[str, Any]) -> Claim:
    return Claim(row["id"], row["job_id"], row["client_name"], row["webhook_id"], row["url"], row["body"],
                 row["attempts"])


def record_attempts(connection: Connection, attempts: Sequence[tuple[Claim, AttemptRecord]]) -> list[bool]:
    """Store the attempt rows and the deliveries' new states (not committed); one flag per attempt, in order.

    A flag is False when that claim was lost meanwhile (the attempt took longer than the lease and
    another worker went on): the attempt is kept for the record, the delivery is left alone.
    """
    kept = []
    for claim, record in attempts:
        params = {
            "delivery_id": claim.delivery_id, "claimed": claim.attempt_number, "new_status": record.new_status,
            "code": record.status_code, "error_": record.error, "next_at": record.next_attempt_at,
            "delivered": record.delivered_at,
        }
        kept.append(connection.execute(_RECORD, params).rowcount == 1)
    if attempts:
        connection.execute(  # one executemany
            _INSERT_ATTEMPT,
            [
                {
                    "delivery_id": claim.delivery_id,
                    "attempt_number": claim.attempt_number,
                    "url": claim.url,
                    "started_at": record.started_at,
                    "duration_ms": record.duration_ms,
                    "status_code": record.status_code,
                    "outcome": record.outcome,
                    "error": record.error,
                    "response_excerpt": record.response_excerpt,
                }
                for claim, record in attempts
            ],
        )
    return kept


_ROUND_BASE = select(func.max(WebhookAttempt.attempt_number).label("base")).where(
    WebhookAttempt.delivery_id == bindparam("delivery_id"), WebhookAttempt.outcome == REDELIVER
)


def retry_round_base(connection: Connection, delivery_id: int) -> int:
    """The attempt count at the latest redelivery request (0 if none): retries restart from it."""
    return connection.execute(_ROUND_BASE, {"delivery_id": delivery_id}).scalar() or 0


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


def insert_delivery(connection: Connection, values: dict[str, Any]) -> int:
    """Add a delivery row (in the transaction that ends the job, not committed); its id."""
    return connection.execute(_INSERT_DELIVERY, values).scalar_one()


_INSERT_DELIVERY = insert(WebhookDelivery.__table__).returning(_D.id)
_INSERT_ATTEMPT = insert(WebhookAttempt.__table__)
