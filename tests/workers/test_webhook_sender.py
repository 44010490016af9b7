"""The webhook sender against a real HTTP receiver on 127.0.0.1: signing, retries, n8n rules, SSRF."""

from __future__ import annotations

import json

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from config import Settings
from jobs import webhook_relay as relay
from jobs.queues import WEBHOOK_READY, ReadyEntry
from jobs.runtime import Runtime
from store import outbox
from store.deliveries import latest_for_job
from store.models import FAILED, utcnow
from tests.callbacks.receiver import Receiver, Reply
from tests.conftest import CLIENT_A, CLIENTS
from tests.workers.webhook_support import (
    attempts_of,
    delivery_of,
    drive,
    finish,
    n8n_error,
    new_job,
    queued_webhooks,
    run_webhooks,
    runtime_with,
    script,
    scripted_delivery,
)
from workers.webhook_sender import WebhookSender


def test_sender_completed_job_sends_one_signed_post(runtime: Runtime, receiver: Receiver) -> None:
    job_id = new_job(runtime, callback=receiver.url("/webhook/pdf-complete"))
    finish(runtime, job_id)
    assert queued_webhooks(runtime) == 1  # handed over by end_job itself, no relay needed
    run_webhooks(runtime)
    [seen] = receiver.requests
    assert seen.method == "POST" and seen.path == "/webhook/pdf-complete"
    Webhook(CLIENT_A.webhook_secret).verify(seen.body, seen.headers)
    body = json.loads(seen.body)
    assert body["job_id"] == job_id and body["status"] == "completed"
    assert body["download_url"].endswith(f"/api/jobs/{job_id}/download") and body["completed_at"].endswith("Z")
    delivery = delivery_of(runtime, job_id)
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None and delivery.handed_at is None and delivery.next_attempt_at is None
    assert seen.headers["webhook-id"] == delivery.webhook_id and seen.body == delivery.body.encode()
    [attempt] = attempts_of(runtime, delivery.id)
    assert (attempt.attempt_number, attempt.status_code, attempt.outcome) == (1, 200, "delivered")
    assert attempt.url == receiver.url("/webhook/pdf-complete") and attempt.response_excerpt == "ok"
    assert attempt.duration_ms is not None and attempt.duration_ms >= 0



def test_sender_signs_with_the_secret_of_a_client_kept_in_sql(runtime: Runtime, receiver: Receiver) -> None:
    from callbacks.signing import new_webhook_secret
    from store.clients import create_client

    secret = new_webhook_secret()
    with runtime.session() as session:  # not in API_CLIENTS: the sender reads it from SQL
        create_client(session, "sql-client", secret)
        session.commit()
    jobs = [new_job(runtime, callback=receiver.url(), client=name) for name in ("sql-client", "acme")]
    for job_id in jobs:
        finish(runtime, job_id)
    assert run_webhooks(runtime) == 2
    by_job = {json.loads(seen.body)["job_id"]: seen for seen in receiver.requests}
    Webhook(secret).verify(by_job[jobs[0]].body, by_job[jobs[0]].headers)
    Webhook(CLIENT_A.webhook_secret).verify(by_job[jobs[1]].body, by_job[jobs[1]].headers)


def test_sender_signature_fails_on_flipped_byte_or_stale_timestamp(
    runtime: Runtime, receiver: Receiver
) -> None:
    job_id = new_job(runtime, callback=receiver.url())
    finish(runtime, job_id)
    run_webhooks(runtime)
    [seen] = receiver.requests
    flipped = bytearray(seen.body)
    flipped[5] ^= 0x01
    with pytest.raises(WebhookVerificationError):
        Webhook(CLIENT_A.webhook_secret).verify(bytes(flipped), seen.headers)
    stale = {**seen.headers, "webhook-timestamp": str(int(seen.headers["webhook-timestamp"]) - 3600)}
    with pytest.raises(WebhookVerificationError):
        Webhook(CLIENT_A.webhook_secret).verify(seen.body, stale)


def test_sender_failed_job_goes_to_pdf_failed(runtime: Runtime, receiver: Receiver) -> None:
    job_id = new_job(runtime, callback=receiver.url("/webhook/pdf-complete"))
    finish(runtime, job_id, FAILED, error="template exploded")
    run_webhooks(runtime)
    [seen] = receiver.requests
    assert seen.path == "/webhook/pdf-failed"
    Webhook(CLIENT_A.webhook_secret).verify(seen.body, seen.headers)
    body = json.loads(seen.body)
    assert (body["status"], body["error"], body["job_id"]) == ("failed", "template exploded", job_id)


def test_sender_503_twice_then_200_three_attempts_one_id(runtime: Runtime, receiver: Receiver) -> None:
    down = Reply(503, body=b"down")
    delivery = scripted_delivery(runtime, receiver, "/hook", down, down, Reply(200))
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("delivered", 3, 200)
    assert len(receiver.requests) == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivery.webhook_id}
    assert len({r.body for r in receiver.requests}) == 1
    for seen in receiver.requests:  # each attempt signed afresh, all verifiable
        Webhook(CLIENT_A.webhook_secret).verify(seen.body, seen.headers)
    rows = attempts_of(runtime, delivery.id)
    assert [(r.attempt_number, r.status_code, r.outcome) for r in rows] == [
        (1, 503, "retry"), (2, 503, "retry"), (3, 200, "delivered"),
    ]
    assert rows[0].error == "receiver answered 503 Service Unavailable" and rows[0].response_excerpt == "down"


def test_sender_410_stops(runtime: Runtime, receiver: Receiver) -> None:
    delivery = scripted_delivery(runtime, receiver, "/hook", Reply(410, body=b"gone"))
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("failed", 1, 410)
    assert "410" in delivery.last_error
    relay.relay_due_deliveries(runtime)
    run_webhooks(runtime)
    assert len(receiver.requests) == 1


def test_sender_n8n_404_gives_up_with_post_hint(runtime: Runtime, receiver: Receiver) -> None:
    path = "/webhook-waiting/4711"
    delivery = scripted_delivery(runtime, receiver, path, n8n_error(404, 'The execution "4711" does not exist.'))
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "POST" in delivery.last_error and "Wait node" in delivery.last_error
    assert len(receiver.requests) == 1


def test_sender_n8n_409_running_then_200_delivered(runtime: Runtime, receiver: Receiver) -> None:
    path = "/webhook-waiting/4712"
    running = n8n_error(409, 'The execution "4712" is running already.')
    running.headers["Retry-After"] = "1"
    delivery = scripted_delivery(runtime, receiver, path, running, Reply(200))
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("delivered", 2, 200)
    first = attempts_of(runtime, delivery.id)[0]
    assert first.outcome == "retry" and "still running" in first.error


def test_sender_n8n_409_finished_counts_as_delivered(runtime: Runtime, receiver: Receiver) -> None:
    path = "/webhook-waiting/4713"
    delivery = scripted_delivery(runtime, receiver, path, n8n_error(409, 'The execution "4713 has finished already.'))
    assert (delivery.status, delivery.attempts) == ("delivered", 1)


def test_sender_hanging_receiver_times_out_then_retries(runtime: Runtime, receiver: Receiver) -> None:
    delivery = scripted_delivery(runtime, receiver, "/hook", Reply(hang=True), Reply(200))
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    first, second = attempts_of(runtime, delivery.id)
    assert first.outcome == "retry" and first.status_code is None and "timeout" in first.error
    assert first.duration_ms >= 1900 and second.status_code == 200


def test_sender_redirect_not_followed(runtime: Runtime, receiver: Receiver) -> None:
    delivery = scripted_delivery(runtime, receiver, "/hook", Reply(302, {"Location": "http://169.254.169.254/latest/meta-data/"}))
    assert (delivery.status, delivery.last_response_code) == ("failed", 302)
    assert "redirect not followed" in delivery.last_error
    assert receiver.paths() == ["/hook"]


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "2130706433", "[::1]", "[::ffff:127.0.0.1]", "0.0.0.0", "169.254.169.254"]
)
def test_sender_ssrf_refused_at_send_time(settings: Settings, redis, receiver: Receiver, host: str) -> None:
    with runtime_with(settings, callback_allowed_hosts=()) as rt:
        job_id = new_job(rt, callback=f"http://{host}:{receiver.port}/hook")
        finish(rt, job_id)
        delivery = drive(rt, job_id)
        assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("failed", 1, None)
        assert "CALLBACK_ALLOWED_HOSTS" in delivery.last_error
    assert receiver.requests == []


def test_sender_sends_callback_auth_header(settings: Settings, redis, receiver: Receiver) -> None:
    acme = CLIENT_A.__class__(**{**CLIENT_A.__dict__, "callback_auth_header": ("X-Webhook-Token", "tok-123")})
    with runtime_with(settings, api_clients=(acme, *CLIENTS[1:])) as rt:
        job_id = new_job(rt, callback=receiver.url())
        finish(rt, job_id)
        run_webhooks(rt)
    [seen] = receiver.requests
    assert seen.headers["X-Webhook-Token"] == "tok-123"
    Webhook(CLIENT_A.webhook_secret).verify(seen.body, seen.headers)


def test_sender_gives_up_after_last_retry(settings: Settings, redis, receiver: Receiver) -> None:
    script(receiver, "/hook", Reply(500))
    with runtime_with(settings, webhook_retry_delays=(1,)) as rt:
        job_id = new_job(rt, callback=receiver.url())
        finish(rt, job_id)
        delivery = drive(rt, job_id)
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert delivery.last_error.startswith("gave up after 2 attempts") and "500" in delivery.last_error
    assert len(receiver.requests) == 2


def test_sender_duplicate_id_never_sends_twice(runtime: Runtime, receiver: Receiver) -> None:
    job_id = new_job(runtime, callback=receiver.url())
    finish(runtime, job_id)
    delivery = delivery_of(runtime, job_id)
    relay.push_ready(runtime, [delivery.id, delivery.id])  # re-handed while still listed
    assert queued_webhooks(runtime) == 3
    assert run_webhooks(runtime) == 1
    relay.push_ready(runtime, [delivery.id])  # a late duplicate
    assert run_webhooks(runtime) == 0
    assert len(receiver.requests) == 1 and delivery_of(runtime, job_id).attempts == 1


def test_sender_claimed_attempt_is_not_sent_by_another_worker(runtime: Runtime, receiver: Receiver) -> None:
    job_id = new_job(runtime, callback=receiver.url())
    finish(runtime, job_id)
    delivery = delivery_of(runtime, job_id)
    runtime.redis.delete(WEBHOOK_READY)  # another sender took "<id>:1" and is sending attempt 1
    with runtime.session() as session:
        assert outbox.claim_attempt(session, delivery.id, utcnow(), 30) is None
    relay.push_ready(runtime, [delivery.id])  # a stray plain copy of the id
    run_webhooks(runtime)
    assert receiver.requests == [] and delivery_of(runtime, job_id).attempts == 1


def test_sender_no_callback_url_no_delivery(runtime: Runtime) -> None:
    job_id = new_job(runtime, callback=None)
    finish(runtime, job_id)
    with runtime.session() as session:
        assert latest_for_job(session, job_id) is None
    assert queued_webhooks(runtime) == 0


def test_sender_take_blocks_for_the_first_id_and_takes_the_rest_in_the_same_round_trip(runtime: Runtime) -> None:
    sender = WebhookSender(runtime, concurrency=8)
    relay.push_ready(runtime, [11, 12, 13])
    assert sender._take(8, block=True) == [ReadyEntry(11), ReadyEntry(12), ReadyEntry(13)]
    relay.push_ready(runtime, [14, 15, 16])
    assert sender._take(2, block=True) == [ReadyEntry(14), ReadyEntry(15)]  # never more than asked for
    runtime.redis.rpush(WEBHOOK_READY, "17:3", "not-an-id")
    assert sender._take(8, block=True) == [ReadyEntry(16), ReadyEntry(17, 3)]  # the bad entry is dropped
    assert sender._take(8, block=True) == []  # after BLOCK_SECONDS on an empty list
    assert queued_webhooks(runtime) == 0
