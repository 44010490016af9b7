"""The webhook outbox relay: hands due deliveries from SQL to the webhook sender's Redis list.

The SQL row is the record of truth and Redis only transport. Handing a delivery over is one RPUSH
of its id onto `WEBHOOK_READY` (`workers.webhook_sender` pops it). A delivery is handed over
- at once by the PDF worker, right after `end_job` commits the final state and the outbox row (with
  its first attempt claimed: the entry is "<id>:1", `hand_over_claimed`);
- by `relay_due_deliveries`, a periodic task of the scheduler program, when a retry falls due, when
  the immediate hand-over failed, and when a hand-over or an attempt was lost (Redis flushed,
  sender killed): a handed delivery not finished within the lease is handed again.

The due time of a retry lives only in SQL (`next_attempt_at`), so no crash between "record this
attempt" and "schedule the next" can lose it: both are one UPDATE. An id may stand on the list twice
(re-handed while a backlog still held it): the sender claims each attempt in SQL first, so the
second copy finds nothing to claim (see `store.outbox`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from redis.client import Pipeline
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from config import Settings
from jobs.queues import WEBHOOK_READY, ReadyEntry
from jobs.runtime import Runtime
from store import deliveries as delivery_store
from store import outbox
from store.models import WebhookDelivery, utcnow

log = logging.getLogger(__name__)

BATCH = 200


class NoCallbackError(Exception):
    """The job has no webhook delivery (no callback URL for its outcome)."""


class DeliveryBusyError(Exception):
    """An attempt of this delivery is queued or being sent right now."""


def lease_seconds(settings: Settings) -> float:
    """How long a hand-over or an attempt may take before it counts as lost."""
    return 2 * settings.webhook_timeout + 10


def attempt_timeout(settings: Settings) -> int:
    """Deadline of one attempt in the sender: longer than the HTTP exchange, shorter than the lease."""
    return int(2 * settings.webhook_timeout + 5)


def hand_over(rt: Runtime, delivery_id: int) -> bool:
    """Hand one due delivery to the sender now; False if it is not due, taken, or Redis failed."""
    now = utcnow()
    with rt.session() as session:
        attempts = outbox.attempts_of(session, delivery_id)
        if attempts is None or not outbox.mark_handed(session, delivery_id, attempts, now, lease_seconds(rt.settings)):
            session.rollback()
            return False
        session.commit()
    return _push_or_release(rt, [delivery_id], now)


def hand_over_quietly(rt: Runtime, delivery_id: int) -> None:
    """`hand_over` for callers that must not fail (the PDF worker): the relay is the backstop."""
    try:
        hand_over(rt, delivery_id)
    except (RedisError, SQLAlchemyError) as exc:
        log.warning("delivery=%s event=hand_over_deferred reason=%r", delivery_id, str(exc))


def hand_over_claimed(rt: Runtime, delivery_id: int, attempt: int, handed_at: datetime, *,
                      also: Callable[[Pipeline], None] | None = None) -> None:
    """Push a delivery whose attempt `attempt` was claimed when its row was written (`end_job`); `also`
    adds the job's other end-of-job commands to the same round trip.

    When Redis fails, the claim is undone and the delivery left due for the relay.
    """
    _push_or_release(rt, [delivery_id], handed_at, claimed=attempt, also=also)


def relay_due_deliveries(rt: Runtime, now: datetime | None = None, limit: int = BATCH) -> int:
    """Hand every due (or lost) delivery to the sender; returns how many were handed."""
    now = now or utcnow()
    lease = lease_seconds(rt.settings)
    with rt.session() as session:
        candidates = outbox.due_for_hand_over(session, now, lease, limit)
        claimed = [d for d, n in candidates if outbox.mark_handed(session, d, n, now, lease)]
        session.commit()
    if not claimed or not _push_or_release(rt, claimed, now):
        return 0
    log.info("event=relay_handed deliveries=%s", len(claimed))
    return len(claimed)


def push_ready(rt: Runtime, delivery_ids: list[int], *, claimed: int | None = None,
               also: Callable[[Pipeline], None] | None = None) -> None:
    """Put deliveries on the sender's list (one RPUSH; entries "<id>:<claimed>" when their attempt is
    claimed already); raises RedisError when the push fails.

    `also` queues more commands in the same round trip; their errors are theirs (the push stands).
    """
    entries = [ReadyEntry(delivery_id, claimed).encode() for delivery_id in delivery_ids]
    if also is None:
        rt.redis.rpush(WEBHOOK_READY, *entries)
        return
    with rt.redis.pipeline(transaction=False) as pipe:
        pipe.rpush(WEBHOOK_READY, *entries)
        also(pipe)
        pushed = pipe.execute(raise_on_error=False)[0]
    if isinstance(pushed, Exception):
        raise pushed


def _push_or_release(rt: Runtime, delivery_ids: list[int], handed_at: datetime, *, claimed: int | None = None,
                     also: Callable[[Pipeline], None] | None = None) -> bool:
    """Push handed deliveries to the sender; when Redis fails, release their hands (and claims) for the
    relay (False)."""
    try:
        push_ready(rt, delivery_ids, claimed=claimed, also=also)
    except RedisError as exc:
        log.warning("deliveries=%s event=hand_over_deferred reason=%r", ",".join(map(str, delivery_ids)), str(exc))
        _release(rt, delivery_ids, handed_at, claimed)
        return False
    return True


def _release(rt: Runtime, delivery_ids: list[int], handed_at: datetime, claimed: int | None) -> None:
    try:
        with rt.session() as session:
            outbox.release_hands(session, delivery_ids, handed_at, claimed=claimed)
    except SQLAlchemyError as exc:  # the lease expires and the relay retries anyway
        log.warning("event=hand_release_failed deliveries=%s reason=%r", len(delivery_ids), str(exc))


def redeliver(rt: Runtime, job_id: str) -> WebhookDelivery:
    """Send a job's webhook again: a new attempt of the same delivery (same webhook-id), now."""
    now = utcnow()
    with rt.session() as session:
        delivery = delivery_store.latest_for_job(session, job_id)
        if delivery is None:
            raise NoCallbackError(job_id)
        if not outbox.reopen(session, delivery, now, lease_seconds(rt.settings)):
            raise DeliveryBusyError(job_id)
    log.info("job=%s delivery=%s event=redeliver_requested", job_id, delivery.id)
    hand_over_quietly(rt, delivery.id)
    with rt.session() as session:
        return session.get(WebhookDelivery, delivery.id)
