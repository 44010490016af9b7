"""The scheduler program's tasks: due runAt jobs, RQ retry scheduling, a new leader's lock takeover."""

from __future__ import annotations

from datetime import timedelta

from rq.scheduler import RQScheduler
from sqlalchemy import update

from store import jobs as job_store
from store.models import JobRecord, utcnow
from tests.conftest import auth, run_jobs, sample_request
from workers.scheduler import RetryScheduler, enqueue_due_run_at_jobs


def test_scheduled_job_is_enqueued_when_due_and_runs(client, runtime) -> None:
    body = sample_request() | {"runAt": (utcnow() + timedelta(hours=1)).isoformat()}
    job_id = client.post("/api/reports/generate-async", json=body, headers=auth()).json["job_id"]
    assert enqueue_due_run_at_jobs(runtime) == 0
    with runtime.session() as session:
        session.execute(update(JobRecord).where(JobRecord.job_id == job_id).values(run_at=utcnow()))
        session.commit()
    assert enqueue_due_run_at_jobs(runtime) == 1
    assert enqueue_due_run_at_jobs(runtime) == 0  # claimed once only
    run_jobs(runtime)
    with runtime.session() as session:
        assert job_store.get_job(session, job_id).status == "completed"


def test_run_at_in_the_past_runs_now(client, runtime) -> None:
    body = sample_request() | {"runAt": "2020-01-01T00:00:00Z"}
    response = client.post("/api/reports/generate-async", json=body, headers=auth())
    assert response.json["status"] == "queued"
    assert runtime.redis.llen("rq:queue:normal") == 1


def test_new_leader_takes_over_the_rq_locks_of_a_former_leader(runtime) -> None:
    for name in ("high", "normal", "low"):
        runtime.redis.set(RQScheduler.get_locking_key(name), "other-host.4242.deadbeef", ex=61)
    scheduler = RetryScheduler(runtime, "this-host.1.cafe0000")
    scheduler(runtime)
    assert scheduler.scheduler.acquired_locks == {"high", "normal", "low"}
    assert runtime.redis.get(RQScheduler.get_locking_key("low")).decode() == "this-host.1.cafe0000"


def test_leaving_leadership_releases_the_rq_locks(runtime) -> None:
    scheduler = RetryScheduler(runtime, "this-host.1.cafe0000")
    scheduler(runtime)
    scheduler.stop()
    assert runtime.redis.get(RQScheduler.get_locking_key("normal")) is None
