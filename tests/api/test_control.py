"""Cancel and retry through the Flask app, with jobs run in-process by a real RQ worker."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

from rq.job import Job
from sqlalchemy import select

from store import jobs as job_store
from store.models import WebhookDelivery, utcnow
from tests.conftest import CLIENT_B, auth, run_jobs, sample_request
from tests.templates import FailingOnceTemplate, GatedTemplate, UnavailableTemplate, install

SUBMIT = "/api/reports/generate-async"
CALLBACK = "http://127.0.0.1:9/webhook/pdf-complete"


def submit(client, **changes) -> str:
    response = client.post(SUBMIT, json=sample_request() | changes, headers=auth())
    assert response.status_code == 202, response.json
    return response.json["job_id"]


def row(runtime, job_id: str):
    with runtime.session() as session:
        return job_store.get_job(session, job_id)


def deliveries(runtime, job_id: str) -> list[dict]:
    with runtime.session() as session:
        rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)).all()
    return [json.loads(delivery.body) | {"url": delivery.url} for delivery in rows]


def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_cancel_queued_job_never_runs_and_sends_cancelled_webhook(client, runtime) -> None:
    job_id = submit(client, callback=CALLBACK)
    response = client.post(f"/api/jobs/{job_id}/cancel", headers=auth())
    assert response.status_code == 200
    assert response.json["status"] == "cancelled" and response.json["error"] == "cancelled on request"
    assert runtime.redis.llen("rq:queue:normal") == 0
    run_jobs(runtime)
    job = row(runtime, job_id)
    assert job.status == "cancelled" and job.started_at is None and job.attempts == 0
    (webhook,) = deliveries(runtime, job_id)
    assert webhook["status"] == "cancelled" and webhook["url"].endswith("/webhook/pdf-failed")


def test_cancel_twice_or_after_completion_is_409(client, runtime) -> None:
    done = submit(client, code="done")
    run_jobs(runtime)
    response = client.post(f"/api/jobs/{done}/cancel", headers=auth())
    assert response.status_code == 409 and response.json["error"] == "not_cancellable"
    assert "completed" in response.json["message"]
    queued = submit(client, code="queued")
    assert client.post(f"/api/jobs/{queued}/cancel", headers=auth()).status_code == 200
    assert client.post(f"/api/jobs/{queued}/cancel", headers=auth()).status_code == 409


def test_cancel_scheduled_job_is_never_enqueued(client, runtime) -> None:
    run_at = (utcnow() + timedelta(minutes=5)).isoformat()
    job_id = submit(client, runAt=run_at)
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=auth()).json["status"] == "cancelled"
    with runtime.session() as session:
        assert job_store.claim_due_scheduled(session, utcnow() + timedelta(hours=1)) == []
    assert row(runtime, job_id).status == "cancelled"


def test_cancel_job_waiting_for_a_retry_removes_the_retry(client, runtime) -> None:
    install(runtime, UnavailableTemplate())
    job_id = submit(client, productId="dependencyDown")
    run_jobs(runtime)  # first attempt fails; RQ schedules the retry (no scheduler runs in this test)
    body = client.get(f"/api/jobs/{job_id}", headers=auth()).json
    assert body["status"] == "queued" and body["retry_count"] == 1 and body["position_in_queue"] is None
    assert runtime.redis.zcard("rq:scheduled:normal") == 1
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=auth()).json["status"] == "cancelled"
    assert runtime.redis.zcard("rq:scheduled:normal") == 0
    assert row(runtime, job_id).retry_count == 1


def test_cancel_another_clients_job_is_404(client) -> None:
    job_id = submit(client)
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=auth(CLIENT_B)).status_code == 404
    assert client.post("/api/jobs/pdf_nope/cancel", headers=auth()).status_code == 404


def test_cancel_running_job_stops_it_and_serves_no_file(client, runtime) -> None:
    gated = GatedTemplate()
    install(runtime, gated)
    job_id = submit(client, productId="gatedReport", callback=CALLBACK)
    answers = {}

    def cancel_when_running() -> None:
        gated.entered.wait(timeout=30)
        answers["cancel"] = client.application.test_client().post(f"/api/jobs/{job_id}/cancel", headers=auth())

    canceller = threading.Thread(target=cancel_when_running)
    canceller.start()
    run_jobs(runtime)  # the worker runs here, in the main thread, where the stop signal lands
    canceller.join()
    assert not gated.gate.is_set() and not gated.timed_out  # the stop interrupted the render
    assert answers["cancel"].status_code == 200 and answers["cancel"].json["status"] == "cancelled"
    job = row(runtime, job_id)
    assert job.status == "cancelled" and job.file_path is None and job.retry_count == 0
    assert Job.fetch(job_id, connection=runtime.redis).get_status() == "stopped"
    assert list(runtime.settings.pdf_dir.rglob(f"*{job_id}*")) == []  # no file, no temp file left
    download = client.get(f"/api/jobs/{job_id}/download", headers=auth())
    assert download.status_code == 409
    (webhook,) = deliveries(runtime, job_id)
    assert webhook["status"] == "cancelled"


def test_stop_from_rq_dashboard_records_cancelled_not_a_retry(client, runtime) -> None:
    from rq.command import send_stop_job_command

    gated = GatedTemplate()
    install(runtime, gated)
    job_id = submit(client, productId="gatedReport")

    def stop_when_running() -> None:
        gated.entered.wait(timeout=30)
        send_stop_job_command(runtime.redis, job_id)  # what rq-dashboard's "stop" button sends

    stopper = threading.Thread(target=stop_when_running)
    stopper.start()
    run_jobs(runtime)
    stopper.join()
    job = row(runtime, job_id)
    assert job.status == "cancelled" and "stopped on request" in job.error_message and job.retry_count == 0
    assert runtime.redis.zcard("rq:scheduled:normal") == 0  # RQ scheduled no retry


def test_retry_failed_job_runs_to_completion_under_same_id(client, runtime) -> None:
    install(runtime, FailingOnceTemplate())
    job_id = submit(client, productId="failingOnce")
    run_jobs(runtime)
    assert row(runtime, job_id).status == "failed"
    dead = client.get("/api/jobs?status=failed", headers=auth()).json["jobs"]
    assert [job["job_id"] for job in dead] == [job_id]
    with runtime.session() as session:
        job_store.get_job(session, job_id).retry_count = 2
        session.commit()
    response = client.post(f"/api/jobs/{job_id}/retry", headers=auth())
    assert response.status_code == 202
    assert response.json["job_id"] == job_id and response.json["status"] == "queued"
    assert response.headers["Location"] == f"/api/jobs/{job_id}"
    assert client.get("/api/jobs?status=failed", headers=auth()).json["jobs"] == []
    run_jobs(runtime)
    body = client.get(f"/api/jobs/{job_id}", headers=auth()).json
    assert body["status"] == "completed" and body["retry_count"] == 2 and body["error"] is None
    assert client.get(f"/api/jobs/{job_id}/download", headers=auth()).status_code == 200


def test_retry_cancelled_job_and_refuse_when_same_code_is_active(client, runtime) -> None:
    first = submit(client)
    client.post(f"/api/jobs/{first}/cancel", headers=auth())
    second = submit(client)  # same code + product: allowed, the first one has ended
    response = client.post(f"/api/jobs/{first}/retry", headers=auth())
    assert response.status_code == 409 and response.json["error"] == "active_job_exists"
    assert response.json["details"][0]["job_id"] == second
    client.post(f"/api/jobs/{second}/cancel", headers=auth())
    assert client.post(f"/api/jobs/{first}/retry", headers=auth()).status_code == 202
    run_jobs(runtime)
    assert row(runtime, first).status == "completed"


def test_retry_of_unfinished_or_completed_job_is_409(client, runtime) -> None:
    job_id = submit(client)
    response = client.post(f"/api/jobs/{job_id}/retry", headers=auth())
    assert response.status_code == 409 and response.json["error"] == "not_retryable"
    run_jobs(runtime)
    assert client.post(f"/api/jobs/{job_id}/retry", headers=auth()).status_code == 409
    assert client.post(f"/api/jobs/{job_id}/retry", headers=auth(CLIENT_B)).status_code == 404


def test_retry_of_cancelled_scheduled_job_schedules_it_again(client, runtime) -> None:
    job_id = submit(client, runAt=(utcnow() + timedelta(minutes=5)).isoformat())
    client.post(f"/api/jobs/{job_id}/cancel", headers=auth())
    response = client.post(f"/api/jobs/{job_id}/retry", headers=auth())
    assert response.status_code == 202 and response.json["status"] == "scheduled"
    assert runtime.redis.llen("rq:queue:normal") == 0
