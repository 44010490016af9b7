"""POST /api/jobs/<id>/callbacks/redeliver, and the callback block of GET /api/jobs/<id>."""

from __future__ import annotations

from standardwebhooks.webhooks import Webhook

from jobs.runtime import Runtime
from tests.callbacks.receiver import Receiver, Reply
from tests.conftest import CLIENT_A, CLIENT_B, auth
from tests.workers.webhook_support import (
    attempts_of,
    delivery_of,
    drive,
    finish,
    new_job,
    run_webhooks,
    script,
)


def _redeliver(client, job_id: str, who=CLIENT_A):  # noqa: ANN001, ANN202
    return client.post(f"/api/jobs/{job_id}/callbacks/redeliver", headers=auth(who))


def test_redeliver_sends_same_webhook_id_as_new_attempt(runtime: Runtime, client, receiver: Receiver) -> None:
    job_id = new_job(runtime, callback=receiver.url())
    finish(runtime, job_id)
    run_webhooks(runtime)
    response = _redeliver(client, job_id)
    assert response.status_code == 202
    body = response.get_json()
    delivery = delivery_of(runtime, job_id)
    assert body["job_id"] == job_id
    assert body["callback"]["status"] == "pending" and body["callback"]["webhook_id"] == delivery.webhook_id
    run_webhooks(runtime)  # handed over at once, no relay needed
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.webhook_id
    assert first.body == second.body
    Webhook(CLIENT_A.webhook_secret).verify(second.body, second.headers)
    shown = client.get(f"/api/jobs/{job_id}", headers=auth()).get_json()["callback"]
    assert (shown["status"], shown["attempts"], shown["last_response_code"]) == ("delivered", 2, 200)
    assert [a.attempt_number for a in attempts_of(runtime, delivery.id)] == [1, 2]


def test_redeliver_failed_delivery_gets_the_retry_schedule_again(
    runtime: Runtime, client, receiver: Receiver
) -> None:
    script(receiver, "/hook", Reply(410), Reply(503), Reply(200))
    job_id = new_job(runtime, callback=receiver.url())
    finish(runtime, job_id)
    assert drive(runtime, job_id).status == "failed"
    assert _redeliver(client, job_id).status_code == 202
    delivery = drive(runtime, job_id)
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    rows = attempts_of(runtime, delivery.id, markers=True)
    assert [(r.attempt_number, r.outcome) for r in rows] == [
        (1, "give_up"), (1, "redeliver"), (2, "retry"), (3, "delivered"),
    ]


def test_redeliver_another_clients_job_is_404(runtime: Runtime, client, receiver: Receiver) -> None:
    job_id = new_job(runtime, callback=receiver.url())
    finish(runtime, job_id)
    run_webhooks(runtime)
    response = _redeliver(client, job_id, who=CLIENT_B)
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"
    assert _redeliver(client, "pdf_doesnotexist").status_code == 404
    assert len(receiver.requests) == 1


def test_redeliver_running_job_is_409(runtime: Runtime, client, receiver: Receiver) -> None:
    job_id = new_job(runtime, callback=receiver.url())
    response = _redeliver(client, job_id)
    assert response.status_code == 409 and response.get_json()["error"] == "not_final"


def test_redeliver_job_without_callback_is_409(runtime: Runtime, client) -> None:
    job_id = new_job(runtime, callback=None)
    finish(runtime, job_id)
    response = _redeliver(client, job_id)
    assert response.status_code == 409 and response.get_json()["error"] == "no_callback"


def test_redeliver_while_attempt_queued_is_409(runtime: Runtime, client, receiver: Receiver) -> None:
    job_id = new_job(runtime, callback=receiver.url())
    finish(runtime, job_id)  # handed over, not sent yet
    response = _redeliver(client, job_id)
    assert response.status_code == 409 and response.get_json()["error"] == "callback_in_progress"
    run_webhooks(runtime)
    assert len(receiver.requests) == 1


def test_redeliver_needs_api_key(runtime: Runtime, client) -> None:
    assert client.post("/api/jobs/pdf_x/callbacks/redeliver").status_code == 401
