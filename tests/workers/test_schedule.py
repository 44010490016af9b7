"""runAt: scheduled in SQL until due, then queued by the scheduler's task and run; past runAt runs now."""

from __future__ import annotations

from datetime import timedelta

from store import jobs as job_store
from store.models import utcnow
from tests.conftest import auth, run_jobs, sample_request
from workers.scheduler import enqueue_due_run_at_jobs

SUBMIT = "/api/reports/generate-async"


def status(client, job_id: str) -> dict:
    return client.get(f"/api/jobs/{job_id}", headers=auth()).json


def test_schedule_job_stays_scheduled_until_due_then_runs(client, runtime) -> None:
    run_at = utcnow() + timedelta(minutes=10)
    job_id = client.post(SUBMIT, json=sample_request() | {"runAt": run_at.isoformat()}, headers=auth()).json["job_id"]
    assert enqueue_due_run_at_jobs(runtime) == 0
    run_jobs(runtime)
    body = status(client, job_id)
    assert body["status"] == "scheduled" and body["started_at"] is None
    assert body["estimated_completion"] >= body["run_at"]
    with runtime.session() as session:  # ten minutes pass
        job_store.get_job(session, job_id).run_at = utcnow() - timedelta(seconds=1)
        session.commit()
    assert enqueue_due_run_at_jobs(runtime) == 1
    assert status(client, job_id)["status"] == "queued"
    run_jobs(runtime)
    assert status(client, job_id)["status"] == "completed"


def test_schedule_run_at_in_the_past_runs_now(client, runtime) -> None:
    past = (utcnow() - timedelta(hours=1)).isoformat()
    response = client.post(SUBMIT, json=sample_request() | {"runAt": past}, headers=auth())
    assert response.status_code == 202 and response.json["status"] == "queued"
    assert response.json["position_in_queue"] == 0
    run_jobs(runtime)
    assert status(client, response.json["job_id"])["status"] == "completed"


def test_schedule_cancelled_while_scheduled_is_never_queued(client, runtime) -> None:
    run_at = (utcnow() + timedelta(minutes=10)).isoformat()
    job_id = client.post(SUBMIT, json=sample_request() | {"runAt": run_at}, headers=auth()).json["job_id"]
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=auth()).status_code == 200
    with runtime.session() as session:
        job_store.get_job(session, job_id).run_at = utcnow() - timedelta(seconds=1)
        session.commit()
    assert enqueue_due_run_at_jobs(runtime) == 0
    assert status(client, job_id)["status"] == "cancelled"
