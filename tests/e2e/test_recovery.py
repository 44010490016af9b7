"""Nothing accepted is lost: worker, scheduler and Redis killed for real under supervisord."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from ops.harness import RunningService
from store import jobs as job_store
from store.models import JobRecord, utcnow
from tests.conftest import sample_request
from tests.e2e.conftest import Api, start_service

# Process kills: SQLite only. The reconciler's SQL runs on PostgreSQL in tests/workers/test_reconciler.py.
pytestmark = pytest.mark.sqlite_only


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, service_database: str | None):  # noqa: ANN201
    """One worker, so any processing job is that worker's."""
    running = start_service(tmp_path_factory.mktemp("recovery") / "var", service_database, WORKERS="1")
    yield running
    running.stop()


def submit_many(api: Api, prefix: str, count: int) -> list[str]:
    ids = []
    for index in range(count):
        response = api.submit(sample_request() | {"code": f"{prefix}-{index}"})
        assert response.status_code == 202
        ids.append(response.json()["job_id"])
    return ids


def wait_processing(service: RunningService, ids: list[str], timeout: float = 30) -> str:
    """The id of a job seen in `processing` (polled every few ms)."""
    factory = service.session_factory()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with factory() as session:
            found = session.scalar(
                select(JobRecord.job_id).where(JobRecord.job_id.in_(ids), JobRecord.status == "processing")
            )
        if found:
            return found
        time.sleep(0.002)
    raise AssertionError("no job was seen processing")


def running_pid(service: RunningService, program: str, timeout: float = 30) -> int:
    """The pid of the single RUNNING process of `program` (waits while supervisor restarts it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = service.program_pids(program)
        if len(pids) == 1:
            return pids[0]
        time.sleep(0.2)
    raise AssertionError(f"{program} is not running: {service.ctl('status')}")


def rows(service: RunningService, ids: list[str]) -> dict[str, JobRecord]:
    with service.session_factory()() as session:
        return {job_id: job_store.get_job(session, job_id) for job_id in ids}


def test_worker_sigkilled_mid_job_the_job_runs_again_and_completes(api: Api, service: RunningService) -> None:
    ids = submit_many(api, "kill", 40)
    killed_mid_job = None
    for _ in range(5):
        pid = running_pid(service, "pdf_worker")  # before the wait: supervisorctl takes ~0.2 s
        victim = wait_processing(service, ids)
        os.kill(pid, signal.SIGKILL)
        if rows(service, [victim])[victim].status == "processing":
            killed_mid_job = victim
            break
    assert killed_mid_job, "could not catch a job mid-flight in 5 tries"
    done = {job_id: api.wait_for(job_id, timeout=120) for job_id in ids}
    assert {body["status"] for body in done.values()} == {"completed"}
    victim = rows(service, [killed_mid_job])[killed_mid_job]
    assert victim.attempts >= 2 and victim.retry_count >= 1
    pdf = api.get(done[killed_mid_job]["download_url"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_graceful_stop_lets_the_running_job_finish(api: Api, service: RunningService) -> None:
    ids = submit_many(api, "term", 20)
    victim = wait_processing(service, ids)
    output = service.ctl("stop", "pdf_worker:*")
    assert "stopped" in output
    states = rows(service, ids)
    assert states[victim].status == "completed"
    assert not [job_id for job_id, row in states.items() if row.status == "processing"]
    service.ctl("start", "pdf_worker:*")
    assert {api.wait_for(job_id)["status"] for job_id in ids} == {"completed"}


def test_scheduler_sigkilled_run_at_jobs_still_run(api: Api, service: RunningService) -> None:
    pid = running_pid(service, "scheduler")
    os.kill(pid, signal.SIGKILL)
    run_at = (utcnow() + timedelta(seconds=2)).isoformat()
    job_id = api.submit(sample_request() | {"code": "after-scheduler-kill", "runAt": run_at}).json()["job_id"]
    assert api.status(job_id)["status"] == "scheduled"
    body = api.wait_for(job_id, timeout=60)
    assert body["status"] == "completed"


def test_redis_sigkilled_and_restarted_every_job_finishes(api: Api, service: RunningService) -> None:
    service.ctl("stop", "pdf_worker:*")
    ids = submit_many(api, "redis-kill", 10)
    time.sleep(1.5)  # appendfsync everysec: the AOF holds every acknowledged write after a second
    pid = running_pid(service, "redis")
    os.kill(pid, signal.SIGKILL)
    during = api.submit(sample_request() | {"code": "while-redis-down"})
    assert during.status_code == 202  # recorded in SQL; the reconciler hands it over later
    ids.append(during.json()["job_id"])
    service.ctl("start", "pdf_worker:*")
    done = {job_id: api.wait_for(job_id, timeout=120) for job_id in ids}
    assert {body["status"] for body in done.values()} == {"completed"}


def test_redis_flushall_reconciler_requeues_unfinished_jobs(api: Api, service: RunningService) -> None:
    service.ctl("stop", "pdf_worker:*")
    ids = submit_many(api, "flush", 10)
    service.redis().flushall()
    service.ctl("start", "pdf_worker:*")
    done = {job_id: api.wait_for(job_id, timeout=120) for job_id in ids}
    assert {body["status"] for body in done.values()} == {"completed"}
