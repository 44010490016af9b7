"""The scheduler program's tasks: due runAt jobs, RQ retry scheduling, dead lock holders."""

from __future__ import annotations

import socket
import subprocess
from datetime import timedelta

from rq.scheduler import RQScheduler
from sqlalchemy import update

from store import jobs as job_store
from store.models import JobRecord, utcnow
from tests.conftest import auth, run_jobs, sample_request
from workers.scheduler import RetryScheduler, enqueue_due_run_at_jobs, holder_is_dead


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


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


def test_holder_is_dead_only_for_dead_local_processes() -> None:
    host = socket.gethostname()
    assert holder_is_dead(f"{host}.{dead_pid()}.abcd1234")
    assert not holder_is_dead(f"{host}.1.abcd1234")  # pid 1 is alive
    assert not holder_is_dead(f"other-host.{dead_pid()}.abcd1234")
    assert not holder_is_dead("0123456789abcdef")  # RQ's default uuid names: cannot tell


def test_retry_scheduler_takes_over_locks_of_a_killed_scheduler(runtime) -> None:
    dead = f"{socket.gethostname()}.{dead_pid()}.deadbeef"
    for name in ("high", "normal", "low"):
        runtime.redis.set(RQScheduler.get_locking_key(name), dead, ex=61)
    scheduler = RetryScheduler(runtime)
    scheduler(runtime)
    assert scheduler.scheduler.acquired_locks == {"high", "normal", "low"}


def test_retry_scheduler_leaves_live_holders_alone(runtime) -> None:
    live = f"{socket.gethostname()}.1.cafe0000"
    runtime.redis.set(RQScheduler.get_locking_key("normal"), live, ex=61)
    scheduler = RetryScheduler(runtime)
    scheduler(runtime)
    assert "normal" not in scheduler.scheduler.acquired_locks
    assert runtime.redis.get(RQScheduler.get_locking_key("normal")).decode() == live
