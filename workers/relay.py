"""The webhook outbox relay: hands due deliveries from SQL to the `webhooks` RQ queue.

The SQL row is the record of truth and Redis only transport. A delivery is handed over
- at once by the PDF worker, right after `end_job` commits the final state and the outbox row;
- by `relay_due_deliveries`, a periodic task of the scheduler program, when a retry falls due, when
  the immediate hand-over failed, and when a hand-over or an attempt was lost (Redis flushed,
  webhook worker killed): a handed delivery not finished within the lease is handed again.

The due time of a retry lives only in SQL (`next_attempt_at`), so no crash between "record this
attempt" and "schedule the next" can lose it: both are one UPDATE. RQ job ids are
`webhook-<delivery>-<attempts>`; an RQ job still waiting under that id is never enqueued twice, and
a duplicate that runs anyway finds nothing to claim (see `store.outbox`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy.exc import SQLAlchemyError

from config import Settings
from store import deliveries as delivery_store
from store import outbox
from store.models import WebhookDelivery, utcnow
from workers.queues import DELIVER_WEBHOOK, WEBHOOKS
from workers.runtime import Runtime

log = logging.getLogger(__name__)

BATCH = 200
_WAITING = {JobStatus.QUEUED.value, JobStatus.SCHEDULED.value, JobStatus.DEFERRED.value}


class NoCallbackError(Exception):
    """The job has no webhook delivery (no callback URL for its outcome)."""


class DeliveryBusyError(Exception):
    """An attempt of this delivery is queued or being sent right now."""


def lease_seconds(settings: Settings) -> float:
    """How long a hand-over or an attempt may take before it counts as lost."""
    return 2 * settings.webhook_timeout + 10


def attempt_timeout(settings: Settings) -> int:
    """RQ job timeout of one attempt: longer than the HTTP exchange, shorter than the lease."""
    return int(2 * settings.webhook_timeout + 5)


def rq_job_id(delivery_id: int, attempts: int) -> str:
    """The RQ job id of the hand-over of a delivery that has had `attempts` attempts."""
    return f"webhook-{delivery_id}-{attempts}"


def hand_over(rt: Runtime, delivery_id: int) -> bool:
    """Hand one due delivery to the webhooks queue now; False if it is not due, taken, or Redis failed."""
    now = utcnow()
    with rt.session() as session:
        attempts = outbox.attempts_of(session, delivery_id)
        if attempts is None or not outbox.mark_handed(session, delivery_id, attempts, now, lease_seconds(rt.settings)):
            session.rollback()
            return False
        session.commit()
    try:
        enqueue_delivery(rt, delivery_id, attempts)
    except RedisError as exc:
        log.warning("delivery=%s event=hand_over_deferred reason=%r", delivery_id, str(exc))
        _release(rt, [delivery_id], now)
        return False
    return True


def hand_over_quietly(rt: Runtime, delivery_id: int) -> None:
    """`hand_over` for callers that must not fail (the PDF worker): the relay is the backstop."""
    try:
        hand_over(rt, delivery_id)
    except (RedisError, SQLAlchemyError) as exc:
        log.warning("delivery=%s event=hand_over_deferred reason=%r", delivery_id, str(exc))


def hand_over_inserted(rt: Runtime, delivery_id: int, handed_at: datetime) -> None:
    """Enqueue the first attempt of a delivery that `end_job` inserted already handed (no claim needed).

    It saves `hand_over`'s claim transaction; when Redis fails the hand is released for the relay.
    """
    try:
        enqueue_delivery(rt, delivery_id, 0)
    except RedisError as exc:
        log.warning("delivery=%s event=hand_over_deferred reason=%r", delivery_id, str(exc))
        _release(rt, [delivery_id], handed_at)


def relay_due_deliveries(rt: Runtime, now: datetime | None = None, limit: int = BATCH) -> int:
    """Hand every due (or lost) delivery to the webhooks queue; returns how many were handed."""
    now = now or utcnow()
    lease = lease_seconds(rt.settings)
    with rt.session() as session:
        candidates = outbox.due_for_hand_over(session, now, lease, limit)
        claimed = [(d, n) for d, n in candidates if outbox.mark_handed(session, d, n, now, lease)]
        session.commit()
    for index, (delivery_id, attempts) in enumerate(claimed):
        try:
            enqueue_delivery(rt, delivery_id, attempts)
        except RedisError as exc:
            log.warning("event=relay_deferred deliveries=%s reason=%r", len(claimed) - index, str(exc))
            _release(rt, [d for d, _ in claimed[index:]], now)
            return index
    if claimed:
        log.info("event=relay_handed deliveries=%s", len(claimed))
    return len(claimed)


def enqueue_delivery(rt: Runtime, delivery_id: int, attempts: int) -> None:
    """Put `deliver_webhook(delivery_id)` on the webhooks queue unless that very job is still waiting."""
    job_id = rq_job_id(delivery_id, attempts)
    status = rt.redis.hget(Job.key_for(job_id), "status")
    if status is not None and status.decode() in _WAITING:
        log.info("delivery=%s event=hand_over_skipped reason=still_queued rq_job=%s", delivery_id, job_id)
        return
    settings = rt.settings
    with rt.redis.pipeline() as pipe:  # one round trip (RQ alone makes two)
        Queue(WEBHOOKS, connection=rt.redis).enqueue_call(
            DELIVER_WEBHOOK,
            args=(delivery_id,),
            job_id=job_id,
            timeout=attempt_timeout(settings),
            result_ttl=settings.cleanup_completed_after,
            failure_ttl=7 * 24 * 3600,
            description=f"webhook delivery={delivery_id} attempt={attempts + 1}",
            pipeline=pipe,
        )
        pipe.execute()


def _release(rt: Runtime, delivery_ids: list[int], handed_at: datetime) -> None:
    try:
        with rt.session() as session:
            outbox.release_hands(session, delivery_ids, handed_at)
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
