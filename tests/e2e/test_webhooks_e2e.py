"""Webhooks end to end: the real service under supervisord, a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from ops.harness import RunningService
from store.models import JobRecord, WebhookAttempt, WebhookDelivery
from tests.callbacks.receiver import Receiver, Reply
from tests.conftest import CLIENT_A, auth, sample_request
from tests.e2e.conftest import start_service
from tests.workers.webhook_support import script, wait_until

# Process kills: SQLite only. The outbox's SQL runs on PostgreSQL in tests/workers/test_webhook_sender.py
# and tests/jobs/test_relay.py.
pytestmark = pytest.mark.sqlite_only

WEBHOOK_TIMEOUT = 2
LEASE = 2 * WEBHOOK_TIMEOUT + 10  # jobs.webhook_relay.lease_seconds


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, service_database: str | None) -> Iterator[RunningService]:
    """One service for this module, with short webhook timeouts and a single webhook sender."""
    running = start_service(tmp_path_factory.mktemp("webhooks") / "var", service_database,
                            WEBHOOK_TIMEOUT=str(WEBHOOK_TIMEOUT), WEBHOOK_WORKERS="1")
    yield running
    running.stop()


def _submit(service: RunningService, callback: str, code: str) -> str:
    body = {**sample_request(), "code": code, "callback": callback}
    response = requests.post(f"{service.base_url}/api/reports/generate-async", json=body, headers=auth(), timeout=10)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def _delivery(service: RunningService, job_id: str) -> WebhookDelivery | None:
    with service.session_factory()() as session:
        return session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)).first()


def _final(service: RunningService, job_id: str, timeout: float) -> WebhookDelivery:
    assert wait_until(lambda: (d := _delivery(service, job_id)) is not None and d.status != "pending", timeout)
    return _delivery(service, job_id)


def test_e2e_job_ends_in_one_signed_webhook(service: RunningService, receiver: Receiver) -> None:
    job_id = _submit(service, receiver.url("/webhook/pdf-complete"), "E2E-WH-1")
    delivery = _final(service, job_id, timeout=60)
    time.sleep(1.5)  # nothing else may arrive
    [seen] = receiver.requests
    Webhook(CLIENT_A.webhook_secret).verify(seen.body, seen.headers)
    body = json.loads(seen.body)
    assert (body["job_id"], body["status"], seen.headers["webhook-id"]) == (job_id, "completed", delivery.webhook_id)
    with service.session_factory()() as session:
        job = session.get(JobRecord, job_id)
        [attempt] = session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id)).all()
    latency = (attempt.started_at - job.completed_at).total_seconds()
    assert latency < 1.0, f"completion -> webhook took {latency:.3f} s (target p50 < 0.05 s)"
    status = requests.get(f"{service.base_url}/api/jobs/{job_id}", headers=auth(), timeout=10).json()
    assert (status["callback"]["status"], status["callback"]["attempts"]) == ("delivered", 1)


def test_e2e_receiver_down_then_back_same_webhook_id(service: RunningService, receiver: Receiver) -> None:
    script(receiver, "/hook", Reply(503), Reply(503), Reply(200))
    job_id = _submit(service, receiver.url("/hook"), "E2E-WH-2")
    delivery = _final(service, job_id, timeout=60)
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    assert len(receiver.requests) == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivery.webhook_id}
    Webhook(CLIENT_A.webhook_secret).verify(receiver.requests[-1].body, receiver.requests[-1].headers)


@pytest.mark.sqlite_only
def test_e2e_killed_webhook_worker_still_one_delivery(service: RunningService, receiver: Receiver) -> None:
    script(receiver, "/crash", Reply(hang=True), Reply(200))
    job_id = _submit(service, receiver.url("/crash"), "E2E-WH-KILL")
    assert wait_until(lambda: len(receiver.requests) == 1, timeout=60)  # the attempt is in flight
    [pid] = service.program_pids("webhook_worker")
    os.kill(pid, signal.SIGKILL)
    delivery = _final(service, job_id, timeout=LEASE + 30)
    time.sleep(2)
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert len(receiver.requests) == 2
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivery.webhook_id}
    with service.session_factory()() as session:
        rows = session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id)).all()
    assert [(r.attempt_number, r.status_code) for r in rows] == [(2, 200)]  # the killed attempt left no row


def test_e2e_sender_sigkilled_mid_send_every_webhook_acknowledged(
    service: RunningService, receiver: Receiver
) -> None:
    paths = [f"/kill-{i}" for i in range(5)]
    for path in paths:  # first attempts trickle an answer that never ends; the second ones succeed
        script(receiver, path, Reply(drip=True), Reply(200))
    job_ids = [_submit(service, receiver.url(path), f"E2E-WH-SIGKILL-{i}") for i, path in enumerate(paths)]
    assert wait_until(lambda: len(receiver.requests) == len(paths), timeout=60)  # all five in flight at once
    [pid] = service.program_pids("webhook_worker")
    os.kill(pid, signal.SIGKILL)
    deliveries = [_final(service, job_id, timeout=LEASE + 40) for job_id in job_ids]  # re-handed by the relay
    time.sleep(2)
    assert [(d.status, d.attempts, d.last_response_code) for d in deliveries] == [("delivered", 2, 200)] * 5
    for path, delivery in zip(paths, deliveries, strict=True):
        seen = [r for r in receiver.requests if r.path == path]
        assert len(seen) == 2 and {r.headers["webhook-id"] for r in seen} == {delivery.webhook_id}
        Webhook(CLIENT_A.webhook_secret).verify(seen[-1].body, seen[-1].headers)
    with service.session_factory()() as session:
        rows = session.scalars(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_([d.id for d in deliveries]))
        ).all()
    assert sorted((r.attempt_number, r.status_code) for r in rows) == [(2, 200)] * 5  # the killed ones left none


@pytest.mark.sqlite_only
def test_e2e_hanging_receiver_does_not_slow_pdf_jobs(service: RunningService, receiver: Receiver) -> None:
    receiver.replies["/hang"] = Reply(hang=True)
    job_ids = [_submit(service, receiver.url("/hang"), f"E2E-WH-HANG-{i}") for i in range(4)]

    def all_completed() -> bool:
        with service.session_factory()() as session:
            return all(session.get(JobRecord, job_id).status == "completed" for job_id in job_ids)

    assert wait_until(all_completed, timeout=30)
    deliveries = [_delivery(service, job_id) for job_id in job_ids]
    assert all(d.status == "pending" for d in deliveries)  # their attempts are still timing out
    assert sum(d.attempts for d in deliveries) < 4 * 3  # ...on the webhook sender only
