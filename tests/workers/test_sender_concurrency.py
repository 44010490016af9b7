"""The webhook sender's batching, concurrency, attempt deadline and SIGTERM, against a real receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from config import Settings
from jobs import webhook_relay as relay
from jobs.queues import WEBHOOK_READY, rq_queue_key
from jobs.runtime import Runtime
from store import outbox
from store.models import WebhookDelivery, utcnow
from tests.callbacks.receiver import Receiver, Reply
from tests.conftest import PROJECT_DIR, clients_json
from tests.workers.webhook_support import (
    age,
    attempts_of,
    delivery_of,
    finish,
    new_job,
    queued_webhooks,
    script,
    wait_until,
)
from workers import webhook_sender

pytestmark = pytest.mark.sqlite_only  # not about SQL: SQLite only (tests/conftest.py)


def _deliveries(rt: Runtime, receiver: Receiver, count: int, path: str = "/hook") -> list[int]:
    ids = []
    for _ in range(count):
        job_id = new_job(rt, callback=receiver.url(path))
        finish(rt, job_id)  # handed over: its id is on the sender's list
        ids.append(delivery_of(rt, job_id).id)
    return ids


def _delivery(rt: Runtime, delivery_id: int) -> WebhookDelivery:
    with rt.session() as session:
        return session.get(WebhookDelivery, delivery_id)


def _status(rt: Runtime, delivery_id: int) -> str:
    return _delivery(rt, delivery_id).status


def test_claim_attempts_claims_due_deliveries_once_in_one_call(runtime: Runtime, receiver: Receiver) -> None:
    due = _deliveries(runtime, receiver, 3)
    lease = relay.lease_seconds(runtime.settings)
    with runtime.session() as session:  # written with attempt 1 claimed: nothing to claim within the lease
        assert outbox.claim_attempts(session, due, utcnow(), lease) == []
    for delivery_id in due:
        age(runtime, delivery_id, lease + 1)  # those claims lapsed
    with runtime.session() as session:
        claims = outbox.claim_attempts(session, [*due, due[0], 999_999], utcnow(), lease)
    assert [(c.delivery_id, c.attempt_number) for c in claims] == [(d, 2) for d in due]
    assert {c.client_name for c in claims} == {"acme"}
    with runtime.session() as session:  # being sent now: nobody claims them again
        assert outbox.claim_attempts(session, due, utcnow(), lease) == []


def test_held_claims_take_over_the_claim_written_with_the_row(runtime: Runtime, receiver: Receiver) -> None:
    ids = _deliveries(runtime, receiver, 2)
    lease = relay.lease_seconds(runtime.settings)
    before = [_delivery(runtime, delivery_id).next_attempt_at for delivery_id in ids]
    claims = outbox.held_claims(runtime.engine, {ids[0]: 1, ids[1]: 2}, utcnow(), lease - 5, lease)
    assert [(c.delivery_id, c.attempt_number, c.client_name) for c in claims] == [(ids[0], 1, "acme")]  # not 2
    assert [_delivery(runtime, delivery_id).next_attempt_at for delivery_id in ids] == before  # only read
    age(runtime, ids[0], lease - 3)  # its entry waited on a backlogged list: 3 s of the lease left
    # too little for a whole attempt: renewed for a lease
    renewed = outbox.held_claims(runtime.engine, {ids[0]: 1}, utcnow(), lease - 5, lease)
    assert [(c.delivery_id, c.attempt_number) for c in renewed] == [(ids[0], 1)]
    assert _delivery(runtime, ids[0]).next_attempt_at > utcnow() + timedelta(seconds=lease - 5)
    age(runtime, ids[0], lease + 1)
    with runtime.session() as session:  # lapsed: claimed anew as attempt 2, the old claim is gone
        assert [c.attempt_number for c in outbox.claim_attempts(session, [ids[0]], utcnow(), lease)] == [2]
    assert outbox.held_claims(runtime.engine, {ids[0]: 1}, utcnow(), 0, lease) == []


def test_sender_sends_a_backlogged_entry_as_its_claimed_attempt(runtime: Runtime, receiver: Receiver) -> None:
    ids = _deliveries(runtime, receiver, 1)
    age(runtime, ids[0], relay.lease_seconds(runtime.settings) - 3)  # taken late from a backlogged list
    assert webhook_sender.drain(runtime) == 1  # renewed and sent, not left for the relay's lease
    assert len(receiver.requests) == 1
    assert (_status(runtime, ids[0]), _delivery(runtime, ids[0]).attempts) == ("delivered", 1)


def test_sender_takes_a_listed_batch_over_in_one_read(
    runtime: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _deliveries(runtime, receiver, 6)
    reads: list[dict[int, int]] = []
    claims: list[list[int]] = []
    held, claim = outbox.held_claims, outbox.claim_attempts

    def spy_held(engine, claimed, now, min_left, lease):  # noqa: ANN001, ANN202
        reads.append(dict(claimed))
        return held(engine, claimed, now, min_left, lease)

    def spy_claim(session, delivery_ids, now, lease):  # noqa: ANN001, ANN202
        claims.append(list(delivery_ids))
        return claim(session, delivery_ids, now, lease)

    monkeypatch.setattr(outbox, "held_claims", spy_held)
    monkeypatch.setattr(outbox, "claim_attempts", spy_claim)
    assert webhook_sender.drain(runtime, concurrency=8) == 6
    assert reads == [dict.fromkeys(ids, 1)] and claims == []  # one LPOP, one read, no claim transaction
    assert len(receiver.requests) == 6 and queued_webhooks(runtime) == 0
    assert {_status(runtime, d) for d in ids} == {"delivered"}


def test_sender_claims_relayed_ids_in_one_transaction(
    runtime: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _deliveries(runtime, receiver, 4)
    runtime.redis.delete(WEBHOOK_READY)
    lease = relay.lease_seconds(runtime.settings)
    for delivery_id in ids:
        age(runtime, delivery_id, lease + 1)  # their entries were lost and their claims lapsed
    assert relay.relay_due_deliveries(runtime) == 4  # the relay pushes plain ids
    batches: list[list[int]] = []
    claim = outbox.claim_attempts

    def spy(session, delivery_ids, now, lease):  # noqa: ANN001, ANN202
        batches.append(list(delivery_ids))
        return claim(session, delivery_ids, now, lease)

    monkeypatch.setattr(outbox, "claim_attempts", spy)
    assert webhook_sender.drain(runtime, concurrency=8) == 4
    assert batches == [ids]
    assert {_status(runtime, d) for d in ids} == {"delivered"} and len(receiver.requests) == 4


def test_sender_claim_failure_puts_the_ids_back(
    runtime: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _deliveries(runtime, receiver, 2)
    held = outbox.held_claims
    failures = [OperationalError("SELECT webhook_deliveries ...", {}, Exception("disk I/O error"))]

    def flaky(engine, claimed, now, min_left, lease):  # noqa: ANN001, ANN202
        if failures:
            raise failures.pop()
        return held(engine, claimed, now, min_left, lease)

    monkeypatch.setattr(outbox, "held_claims", flaky)
    assert webhook_sender.drain(runtime) == 0
    assert queued_webhooks(runtime) == 2  # back on the list at once, not left to the relay's lease
    assert webhook_sender.drain(runtime) == 2
    assert {_status(runtime, d) for d in ids} == {"delivered"} and len(receiver.requests) == 2


def test_sender_sends_attempts_concurrently(runtime: Runtime, receiver: Receiver) -> None:
    receiver.replies["/slow"] = Reply(delay=1.0)
    ids = _deliveries(runtime, receiver, 6, "/slow")
    started = time.monotonic()
    assert webhook_sender.drain(runtime, concurrency=8) == 6
    assert time.monotonic() - started < 3.5  # one after another would take 6 s
    assert {_status(runtime, d) for d in ids} == {"delivered"}


def test_sender_deadline_slow_drip_receiver_does_not_hold_the_others(runtime: Runtime, receiver: Receiver) -> None:
    script(receiver, "/drip", Reply(drip=True), Reply(200))
    [dripping] = _deliveries(runtime, receiver, 1, "/drip")
    others = _deliveries(runtime, receiver, 5)
    started = time.monotonic()
    assert webhook_sender.drain(runtime, concurrency=2, deadline=3) == 6
    assert 2.9 < time.monotonic() - started < 6
    delivery = _delivery(runtime, dripping)
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("pending", 1, None)
    assert "attempt deadline" in delivery.last_error and delivery.next_attempt_at is not None
    [held] = attempts_of(runtime, dripping)
    assert (held.outcome, held.status_code, held.duration_ms) == ("retry", None, 3000)
    for delivery_id in others:  # sent one after another on the second thread while the first was held
        assert _status(runtime, delivery_id) == "delivered"
        assert (_delivery(runtime, delivery_id).delivered_at - held.started_at).total_seconds() < 2
    receiver.release.set()  # the stuck request ends now; its late result is dropped
    time.sleep(0.5)
    assert len(attempts_of(runtime, dripping)) == 1 and _delivery(runtime, dripping).attempts == 1


def test_sender_replaces_a_thread_stuck_past_its_deadline(runtime: Runtime, receiver: Receiver) -> None:
    script(receiver, "/drip", Reply(drip=True))
    [dripping] = _deliveries(runtime, receiver, 1, "/drip")
    others = _deliveries(runtime, receiver, 3)
    assert webhook_sender.drain(runtime, concurrency=1, deadline=2) == 4
    assert {_status(runtime, d) for d in others} == {"delivered"}
    assert _status(runtime, dripping) == "pending"


def _sender_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "DATA_DIR": str(settings.data_dir),
        "REDIS_URL": settings.redis_url or "",
        "DATABASE_URL": settings.sqlalchemy_url,
        "API_CLIENTS": clients_json(),
        "CALLBACK_ALLOWED_HOSTS": "127.0.0.0/8",
        "WEBHOOK_TIMEOUT": str(settings.webhook_timeout),
        "LOOPBACK_ONLY": "1",
    }


def test_sender_process_sigterm_finishes_the_attempt_in_flight(
    runtime: Runtime, settings: Settings, receiver: Receiver
) -> None:
    receiver.replies["/slow"] = Reply(delay=1.5)
    [in_flight] = _deliveries(runtime, receiver, 1, "/slow")
    process = subprocess.Popen(
        [sys.executable, "-m", "workers.webhook_sender"], cwd=PROJECT_DIR, env=_sender_env(settings),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        assert wait_until(lambda: len(receiver.requests) == 1, timeout=20)
        process.send_signal(signal.SIGTERM)
        # The handler runs in the sender's main thread a moment later; an id pushed before that is
        # fairly taken (the fetch thread's BLPOP returns at once), so the next one comes after it.
        time.sleep(0.5)
        [waiting] = _deliveries(runtime, receiver, 1)  # handed over after the SIGTERM: not taken
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
        output = process.communicate()[0].decode()
    assert "event=sender_stop attempts=1" in output, output
    assert _status(runtime, in_flight) == "delivered"
    assert [row.status_code for row in attempts_of(runtime, in_flight)] == [200]
    assert _status(runtime, waiting) == "pending" and queued_webhooks(runtime) == 1
    assert len(receiver.requests) == 1


def _busy(linger: float) -> webhook_sender.ArrivalRate:
    """An arrival rate that has just seen entries come microseconds apart."""
    rate = webhook_sender.ArrivalRate(linger)
    for _ in range(10):
        rate.taken(1)
    assert rate.busy()
    return rate


def test_arrival_rate_is_busy_only_while_entries_come_faster_than_the_linger() -> None:
    now = [0.0]
    rate = webhook_sender.ArrivalRate(0.03, clock=lambda: now[0])
    rate.taken(1)
    assert not rate.busy()  # a first entry, or one alone: sent at once
    for _ in range(15):  # a batch of 2 every 40 ms (an entry every 20 ms), for 0.6 s
        now[0] += 0.04
        rate.taken(2)
    assert rate.busy()
    now[0] += 0.035  # one slower entry does not end it
    rate.taken(1)
    assert rate.busy()
    now[0] += 5  # a quiet spell does: the next entry leaves at once
    rate.taken(1)
    assert not rate.busy()
    for _ in range(10):  # entries 50 ms apart never make it busy
        now[0] += 0.05
        rate.taken(1)
    assert not rate.busy()


def _run_sender(sender: webhook_sender.WebhookSender) -> threading.Thread:
    thread = threading.Thread(target=sender.run, daemon=True)
    thread.start()
    return thread


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[dict[int, int]]:
    reads: list[dict[int, int]] = []
    held = outbox.held_claims

    def spy(engine, claimed, now, min_left, lease):  # noqa: ANN001, ANN202
        reads.append(dict(claimed))
        return held(engine, claimed, now, min_left, lease)

    monkeypatch.setattr(outbox, "held_claims", spy)
    return reads


def _pdf_job_waiting(runtime: Runtime) -> None:
    """A job in RQ's normal queue, as far as the sender can tell (it reads the list's length)."""
    runtime.redis.rpush(rq_queue_key("normal"), "pdf_waiting")


@pytest.mark.parametrize(("busy", "jobs_waiting"), [(True, True), (False, True), (True, False)])
def test_sender_under_load_takes_the_entries_pushed_while_it_lingers_in_the_same_batch(
    runtime: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, busy: bool, jobs_waiting: bool
) -> None:
    reads = _reads(monkeypatch)
    sender = webhook_sender.WebhookSender(runtime, concurrency=8, linger=0.6)
    if busy:
        sender.arrivals = _busy(0.6)
    if jobs_waiting:
        _pdf_job_waiting(runtime)
    thread = _run_sender(sender)
    try:
        first = _deliveries(runtime, receiver, 1)[0]
        assert wait_until(lambda: queued_webhooks(runtime) == 0, timeout=5)  # taken by the sender
        time.sleep(0.1)
        second = _deliveries(runtime, receiver, 1)[0]
        assert wait_until(lambda: len(receiver.requests) == 2)
    finally:
        sender.stop()
        thread.join(10)
    assert not thread.is_alive()
    # busy with jobs waiting: one read for both. Each sent at once when not busy (the first entry
    # after a quiet spell) or when no job is waiting (the last webhooks of a burst)
    assert reads == ([{first: 1, second: 1}] if busy and jobs_waiting else [{first: 1}, {second: 1}])
    assert {_status(runtime, d) for d in (first, second)} == {"delivered"}


def test_sender_stopped_while_it_lingers_puts_the_entry_back_at_once(runtime: Runtime, receiver: Receiver) -> None:
    sender = webhook_sender.WebhookSender(runtime, concurrency=8, linger=30)
    sender.arrivals = _busy(30)
    _pdf_job_waiting(runtime)
    thread = _run_sender(sender)
    delivery_id = _deliveries(runtime, receiver, 1)[0]
    assert wait_until(lambda: queued_webhooks(runtime) == 0, timeout=5)  # taken, and lingering for 30 s
    stopped = time.monotonic()
    sender.stop()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - stopped < 5  # SIGTERM does not wait for the linger
    assert runtime.redis.lrange(WEBHOOK_READY, 0, -1) == [f"{delivery_id}:1".encode()]
    assert receiver.requests == []
