"""The RQ job that makes one attempt of a webhook delivery and records it. Takes an id, never objects.

`deliver_webhook` claims the attempt in SQL first (so two workers, or a duplicate RQ job, never send
the same attempt), signs the stored body with the client's secret and a fresh timestamp, POSTs it
through `callbacks.deliver`, then records the attempt and the delivery's next state in one
transaction. HTTP trouble is never an exception here: it is an attempt with an outcome. The next
attempt is not enqueued by this job; its due time is stored and the relay hands it over.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from rq.timeouts import JobTimeoutException
from sqlalchemy.orm import Session

from callbacks import DELIVERED, GIVE_UP, RETRY, AttemptResult, deliver, next_delay, signature_headers
from store import outbox
from store.clients import find_client_by_name
from store.models import DELIVERY_DELIVERED, DELIVERY_FAILED, DELIVERY_PENDING, utcnow
from workers.relay import attempt_timeout, lease_seconds
from workers.runtime import Runtime, get_runtime

log = logging.getLogger(__name__)


def deliver_webhook(delivery_id: int) -> dict[str, Any]:
    """Make the next attempt of webhook delivery `delivery_id` and record it (RQ entry point)."""
    rt = get_runtime()
    with rt.session() as session:
        claim = outbox.claim_attempt(session, delivery_id, utcnow(), lease_seconds(rt.settings))
    if claim is None:
        log.info("delivery=%s event=webhook_skipped reason=not_due_or_taken", delivery_id)
        return {"delivery_id": delivery_id, "skipped": True}
    started_at = utcnow()
    try:
        result = attempt(rt, claim)
    except Exception as exc:  # a bug: count the attempt (so retries stay bounded), then let RQ record it
        log.exception("delivery=%s job=%s event=webhook_attempt_crashed", delivery_id, claim.job_id)
        record(rt, claim, AttemptResult(RETRY, None, 0, error=f"internal error ({type(exc).__name__})"), started_at)
        raise
    status = record(rt, claim, result, started_at)
    return {"delivery_id": delivery_id, "attempt": claim.attempt_number, "outcome": result.outcome, "status": status}


def attempt(rt: Runtime, claim: outbox.Claim) -> AttemptResult:
    """Sign and POST the delivery's body once; problems come back as an AttemptResult."""
    settings = rt.settings
    with rt.session() as session:
        client = find_client_by_name(session, settings.api_clients, claim.client_name or "")
    if client is None:
        return AttemptResult(GIVE_UP, None, 0, error=f"client {claim.client_name!r} no longer exists: cannot sign")
    body = claim.body.encode("utf-8")
    headers: dict[str, str] = {}
    if client.callback_auth_header:
        name, value = client.callback_auth_header
        headers[name] = value
    try:
        headers.update(signature_headers(client.webhook_secret, claim.webhook_id, int(time.time()), body))
    except ValueError as exc:
        return AttemptResult(GIVE_UP, None, 0, error=f"client {client.name!r} webhook secret is unusable: {exc}")
    started = time.monotonic()
    try:
        return deliver(
            claim.url, body, headers, timeout=settings.webhook_timeout, allowed_hosts=settings.callback_allowed_hosts
        )
    except JobTimeoutException:
        elapsed = round((time.monotonic() - started) * 1000)
        return AttemptResult(RETRY, None, elapsed, error=f"attempt stopped after {attempt_timeout(settings)} s")


def record(rt: Runtime, claim: outbox.Claim, result: AttemptResult, started_at: datetime) -> str:
    """Store the attempt and the delivery's next state; returns that state."""
    now = utcnow()
    with rt.session() as session:
        status, next_at, error = next_state(rt, session, claim, result, now)
        kept = outbox.record_attempt(
            session,
            claim,
            outbox.AttemptRecord(
                started_at=started_at,
                outcome=result.outcome,
                status_code=result.status_code,
                duration_ms=result.duration_ms,
                error=error,
                response_excerpt=result.response_excerpt,
                new_status=status,
                next_attempt_at=next_at,
                delivered_at=now if status == DELIVERY_DELIVERED else None,
            ),
        )
    log.info(
        "delivery=%s job=%s webhook_id=%s attempt=%s outcome=%s code=%s status=%s next_at=%s",
        claim.delivery_id, claim.job_id, claim.webhook_id, claim.attempt_number, result.outcome,
        result.status_code, status, next_at.isoformat(timespec="seconds") if next_at else None,
    )
    if not kept:
        log.warning("delivery=%s event=claim_lost attempt=%s", claim.delivery_id, claim.attempt_number)
    return status


def next_state(
    rt: Runtime, session: Session, claim: outbox.Claim, result: AttemptResult, now: datetime
) -> tuple[str, datetime | None, str | None]:
    """(status, next_attempt_at, last_error) after an attempt, following WEBHOOK_RETRY_DELAYS."""
    if result.outcome == DELIVERED:
        return DELIVERY_DELIVERED, None, result.error
    if result.outcome != RETRY:
        return DELIVERY_FAILED, None, result.error
    round_number = claim.attempt_number - outbox.retry_round_base(session, claim.delivery_id)
    delay = next_delay(max(round_number, 1), rt.settings.webhook_retry_delays, result.retry_after)
    if delay is None:
        return DELIVERY_FAILED, None, f"gave up after {round_number} attempts; last: {result.error}"
    return DELIVERY_PENDING, now + timedelta(seconds=delay), result.error
