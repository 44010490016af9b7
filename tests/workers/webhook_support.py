"""Helpers for webhook delivery tests: jobs ended through `end_job`, scripted receivers, driving."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from config import Settings
from jobs import outcome
from jobs import webhook_relay as relay
from jobs.queues import WEBHOOK_READY
from jobs.runtime import Runtime, build_runtime, set_runtime
from store.db import migrate
from store.models import (
    COMPLETED,
    PROCESSING,
    JobRecord,
    WebhookAttempt,
    WebhookDelivery,
)
from tests.callbacks.receiver import Receiver, Reply
from workers.webhook_sender import drain

_counter = iter(range(1, 1_000_000))


class Scripted(dict):
    """`Receiver.replies` that answers each path from a list, one reply per request; the last repeats."""

    def get(self, path: str, default: Any = None) -> Any:
        replies = super().get(path)
        if not replies:
            return default
        return replies.pop(0) if len(replies) > 1 else replies[0]


def script(receiver: Receiver, path: str, *replies: Reply) -> None:
    """Make the receiver answer `path` with these replies in turn."""
    if not isinstance(receiver.replies, Scripted):
        receiver.replies = Scripted()
    receiver.replies[path] = list(replies)


def n8n_error(code: int, message: str) -> Reply:
    """An answer shaped like n8n's JSON error body."""
    return Reply(code, {"Content-Type": "application/json"}, json.dumps({"code": code, "message": message}).encode())


def new_job(rt: Runtime, *, callback: str | None, failure_callback: str | None = None, client: str = "acme") -> str:
    """A processing job of `client`, inserted directly (no rendering involved)."""
    job_id = f"pdf_test{next(_counter):06d}"
    with rt.session() as session:
        session.add(
            JobRecord(
                job_id=job_id, client_name=client, code=f"C{job_id[-6:]}", product_id="minatBakatUmum",
                priority="normal", status=PROCESSING, request_fingerprint="f" * 64, callback_url=callback,
                failure_callback_url=failure_callback, attempts=1, retry_count=0,
            )
        )
        session.commit()
    return job_id


def finish(rt: Runtime, job_id: str, status: str = COMPLETED, error: str | None = None) -> None:
    """End the job the way the PDF worker does: final state + outbox row in one transaction, then hand-over."""
    if status == COMPLETED:
        outcome.complete_job(
            rt, job_id, storage_backend="local", file_path=f"{job_id}.pdf", file_size=1234,
            google_drive_link=None, processing_ms=12,
        )
    else:
        outcome.end_job(rt, job_id, status, error=error)


def delivery_of(rt: Runtime, job_id: str) -> WebhookDelivery:
    """The job's (only) webhook delivery."""
    with rt.session() as session:
        return session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)).one()


def attempts_of(rt: Runtime, delivery_id: int, *, markers: bool = False) -> list[WebhookAttempt]:
    """The recorded HTTP attempts of a delivery, oldest first (redelivery markers only if asked)."""
    query = select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id).order_by(WebhookAttempt.id)
    with rt.session() as session:
        rows = session.scalars(query).all()
    return [row for row in rows if markers or row.outcome != "redeliver"]


def queued_webhooks(rt: Runtime) -> int:
    """How many delivery ids wait on the webhook sender's list."""
    return rt.redis.llen(WEBHOOK_READY)


def run_webhooks(rt: Runtime) -> int:
    """Drain the sender's list once in-process, as webhook_worker would; returns attempts recorded."""
    return drain(rt)


def drive(rt: Runtime, job_id: str, timeout: float = 20) -> WebhookDelivery:
    """Relay + sender, as the scheduler and webhook_worker would, until the delivery is final."""
    deadline = time.monotonic() + timeout
    while True:
        relay.relay_due_deliveries(rt)
        run_webhooks(rt)
        delivery = delivery_of(rt, job_id)
        if delivery.status != "pending" or time.monotonic() > deadline:
            return delivery
        time.sleep(0.05)


def scripted_delivery(rt: Runtime, receiver: Receiver, path: str, *replies: Reply) -> WebhookDelivery:
    """A completed job whose webhook to `path` meets these replies in turn, driven until it is final."""
    script(receiver, path, *replies)
    job_id = new_job(rt, callback=receiver.url(path))
    finish(rt, job_id)
    return drive(rt, job_id)


def age(rt: Runtime, delivery_id: int, seconds: float) -> None:
    """Let `seconds` pass for a delivery: move its hand-over and due times back."""
    shift = timedelta(seconds=seconds)
    with rt.session() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        values: dict[str, Any] = {}
        if delivery.handed_at is not None:
            values["handed_at"] = delivery.handed_at - shift
        if delivery.next_attempt_at is not None:
            values["next_attempt_at"] = delivery.next_attempt_at - shift
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values))
        session.commit()


def wait_until(predicate: Callable[[], bool], timeout: float = 10) -> bool:
    """Poll until `predicate()` holds or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@contextmanager
def runtime_with(settings: Settings, **changes: Any) -> Iterator[Runtime]:
    """A runtime on a variant of the test settings (same database and Redis), installed process-wide."""
    variant = settings.with_changes(**changes)
    variant.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(variant.sqlalchemy_url)
    rt = build_runtime(variant, socket_timeout=2)
    set_runtime(rt)
    try:
        yield rt
    finally:
        set_runtime(None)
        rt.engine.dispose()
