"""The outbox relay: immediate hand-over after end_job, due retries, lost hand-overs and attempts."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError
from redis.retry import Retry

from config import Settings
from jobs import webhook_relay as relay
from jobs.queues import WEBHOOK_READY
from jobs.runtime import Runtime
from jobs.submit import JobRequest, submit_job
from store import outbox
from store.models import JobRecord, utcnow
from tests.callbacks.receiver import Receiver, Reply
from tests.conftest import run_jobs, sample_request
from tests.workers.webhook_support import (
    age,
    attempts_of,
    delivery_of,
    finish,
    new_job,
    queued_webhooks,
    run_webhooks,
)
from workers import scheduler


def test_relay_end_job_hands_over_at_once(runtime: Runtime, receiver: Receiver) -> None:
    job_id = new_job(runtime, callback=receiver.url())
    finish(runtime, job_id)
    delivery = delivery_of(runtime, job_id)
    assert delivery.handed_at is not None and queued_webhooks(runtime) == 1
    # written with its first attempt claimed for the lease; the entry names that attempt
    assert delivery.attempts == 1
    assert delivery.next_attempt_at - delivery.handed_at == timedelta(seconds=relay.lease_seconds(runtime.settings))
    assert runtime.redis.lrange(WEBHOOK_READY, 0, -1) == [f"{delivery.id}:1".encode()]
    assert relay.relay_due_deliveries(runtime) == 0  # already handed: the relay leaves it alone
    assert queued_webhooks(runtime) == 1
    started = time.monotonic()
    run_webhooks(runtime)
    assert len(receiver.requests) == 1 and time.monotonic() - started < 5


def test_relay_end_job_survives_redis_down(runtime: Runtime, receiver: Receiver) -> None:
    down = Runtime(
        settings=runtime.settings,
        redis=Redis(unix_socket_path="/nonexistent/redis.sock", retry=Retry(NoBackoff(), 0)),
        engine=runtime.engine,
        session_factory=runtime.session_factory,
    )
    job_id = new_job(runtime, callback=receiver.url())
    finish(down, job_id)  # must not raise: the final state and the outbox row are committed
    delivery = delivery_of(runtime, job_id)
    # the claim written with the row is undone: due now, for the relay
    assert (delivery.status, delivery.handed_at, delivery.attempts) == ("pending", None, 0)
    assert delivery.next_attempt_at <= utcnow()
    assert relay.relay_due_deliveries(runtime) == 1
    run_webhooks(runtime)
    assert len(receiver.requests) == 1 and delivery_of(runtime, job_id).status == "delivered"


def test_relay_hands_retry_only_when_due(runtime: Runtime, receiver: Receiver) -> None:
    job_id = new_job(runtime, callback=receiver.url())
    finish(runtime, job_id)
    delivery = delivery_of(runtime, job_id)
    runtime.redis.delete(WEBHOOK_READY)
    claim = outbox.held_claims(runtime.engine, {delivery.id: 1}, utcnow(), 0, 30)[0]  # the sender took "<id>:1"
    retry_at = utcnow() + timedelta(seconds=60)  # over; the attempt asked for a retry in 60 s
    with runtime.engine.begin() as connection:
        outbox.record_attempts(connection, [(claim, outbox.AttemptRecord(
            started_at=utcnow(), outcome="retry", status_code=503, duration_ms=5, error="503",
            response_excerpt=None, new_status="pending", next_attempt_at=retry_at,
        ))])
    assert relay.relay_due_deliveries(runtime) == 0 and queued_webhooks(runtime) == 0
    age(runtime, delivery.id, 61)
    assert relay.relay_due_deliveries(runtime) == 1 and queued_webhooks(runtime) == 1
    run_webhooks(runtime)
    assert delivery_of(runtime, job_id).status == "delivered" and len(receiver.requests) == 1


def test_relay_rehands_delivery_lost_with_redis(runtime: Runtime, receiver: Receiver) -> None:
    job_id = new_job(runtime, callback=receiver.url())
    finish(runtime, job_id)
    delivery = delivery_of(runtime, job_id)
    runtime.redis.flushall()  # the listed id is gone
    assert relay.relay_due_deliveries(runtime) == 0  # within the lease it may still be on its way
    age(runtime, delivery.id, relay.lease_seconds(runtime.settings) + 1)
    assert relay.relay_due_deliveries(runtime) == 1 and queued_webhooks(runtime) == 1
    run_webhooks(runtime)
    assert len(receiver.requests) == 1
    # attempt 1 was claimed with the row and lost with its Redis entry; attempt 2 is the one sent
    assert (delivery_of(runtime, job_id).status, delivery_of(runtime, job_id).attempts) == ("delivered", 2)


def test_relay_rehands_after_sender_killed_mid_attempt(runtime: Runtime, receiver: Receiver) -> None:
    job_id = new_job(runtime, callback=receiver.url())
    finish(runtime, job_id)
    delivery = delivery_of(runtime, job_id)
    runtime.redis.delete(WEBHOOK_READY)  # the sender took "<id>:1"...
    # ...took over the claim made with the row, and was SIGKILLed
    assert outbox.held_claims(runtime.engine, {delivery.id: 1}, utcnow(), 0, 30)
    assert relay.relay_due_deliveries(runtime) == 0  # being sent, as far as anyone can tell
    run_webhooks(runtime)
    assert receiver.requests == []
    age(runtime, delivery.id, relay.lease_seconds(runtime.settings) + 1)
    assert relay.relay_due_deliveries(runtime) == 1
    run_webhooks(runtime)
    relay.relay_due_deliveries(runtime)
    run_webhooks(runtime)
    final = delivery_of(runtime, job_id)
    assert len(receiver.requests) == 1 and receiver.requests[0].headers["webhook-id"] == final.webhook_id
    assert (final.status, final.attempts) == ("delivered", 2)
    assert [a.attempt_number for a in attempts_of(runtime, delivery.id)] == [2]


def test_relay_rehand_while_id_still_listed_sends_once(runtime: Runtime, receiver: Receiver) -> None:
    job_id = new_job(runtime, callback=receiver.url())
    finish(runtime, job_id)
    delivery = delivery_of(runtime, job_id)
    age(runtime, delivery.id, relay.lease_seconds(runtime.settings) + 1)  # the sender's list is backlogged
    assert relay.relay_due_deliveries(runtime) == 1  # re-handed while its id is still listed
    assert queued_webhooks(runtime) == 2
    # "<id>:1" renews the lapsed claim of attempt 1 and sends it; the relay's plain copy finds nothing due
    assert run_webhooks(runtime) == 1
    assert len(receiver.requests) == 1 and delivery_of(runtime, job_id).attempts == 1


def test_relay_concurrent_relays_hand_each_delivery_once(runtime: Runtime, receiver: Receiver) -> None:
    job_ids = [new_job(runtime, callback=receiver.url()) for _ in range(5)]
    for job_id in job_ids:
        finish(runtime, job_id)
    runtime.redis.flushall()
    for job_id in job_ids:
        age(runtime, delivery_of(runtime, job_id).id, relay.lease_seconds(runtime.settings) + 1)
    barrier = threading.Barrier(3)
    handed: list[int] = []

    def run_relay() -> None:
        barrier.wait()
        handed.append(relay.relay_due_deliveries(runtime))

    threads = [threading.Thread(target=run_relay) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(handed) == 5 and queued_webhooks(runtime) == 5
    run_webhooks(runtime)
    assert len(receiver.requests) == 5


def test_relay_is_a_scheduler_task(settings: Settings) -> None:
    tasks = {task.name: task for task in scheduler.shared_tasks(settings)}
    assert tasks["webhook_relay"].run is relay.relay_due_deliveries
    assert tasks["webhook_relay"].interval == settings.scheduler_interval


def test_relay_hanging_receiver_does_not_slow_pdf_jobs(runtime: Runtime, receiver: Receiver) -> None:
    receiver.replies["/hang"] = Reply(hang=True)
    data = sample_request()["data"]
    jobs = [
        submit_job(runtime, "acme", JobRequest(code=f"HANG{i}", product_id="minatBakatUmum",
                                               callback=receiver.url("/hang"), data=data)).job
        for i in range(3)
    ]
    started = time.monotonic()
    run_jobs(runtime)  # the PDF queues only, as a PDF worker
    pdf_seconds = time.monotonic() - started
    with runtime.session() as session:
        statuses = {session.get(JobRecord, job.job_id).status for job in jobs}
    assert statuses == {"completed"}
    assert receiver.requests == [] and queued_webhooks(runtime) == 3  # deliveries wait on their own queue
    assert pdf_seconds < len(jobs) * runtime.settings.webhook_timeout  # no PDF job waited for the receiver
    started = time.monotonic()
    run_webhooks(runtime)  # the three time out side by side on the sender's threads
    timeout = runtime.settings.webhook_timeout
    assert timeout * 0.9 <= time.monotonic() - started < len(jobs) * timeout
    assert {delivery_of(runtime, job.job_id).last_error for job in jobs} == {
        f"receiver 127.0.0.1:{receiver.port} did not answer within 2 s (timeout)"
    }


def test_push_with_end_of_job_commands_stands_or_fails_on_the_push_alone(runtime: Runtime) -> None:
    # a failing added command does not undo a push that went through (the claim must not be released)
    relay.push_ready(runtime, [7], claimed=1, also=lambda pipe: pipe.eval("return redis.call('NOPE')", 0))
    assert runtime.redis.lrange(WEBHOOK_READY, 0, -1) == [b"7:1"]
    # a push that fails raises (its claim is then released for the relay), the added commands ran anyway
    runtime.redis.delete(WEBHOOK_READY)
    runtime.redis.set(WEBHOOK_READY, "not a list")
    with pytest.raises(ResponseError):
        relay.push_ready(runtime, [8], claimed=1, also=lambda pipe: pipe.set("pdfjobs:test:also", 1))
    assert runtime.redis.get("pdfjobs:test:also") == b"1"
