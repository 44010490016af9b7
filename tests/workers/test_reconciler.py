"""The reconciler re-aligns RQ with SQL: missing, orphaned and stuck jobs, one pass at a time."""

from __future__ import annotations

from datetime import timedelta

from rq.job import Job
from sqlalchemy import update

from jobs.queues import rq_intermediate_key, rq_queue_key
from store import jobs as job_store
from store.models import JobRecord, utcnow
from tests.conftest import auth, run_jobs, sample_request, unreachable_redis
from workers.reconciler import LOCK_KEY, reconcile

SUBMIT = "/api/reports/generate-async"


def submit(client, code: str = "rec-1") -> str:
    response = client.post(SUBMIT, json=sample_request() | {"code": code}, headers=auth())
    assert response.status_code == 202
    return response.json["job_id"]


def backdate(rt, job_id: str, seconds: int = 120) -> None:
    with rt.session() as session:
        session.execute(
            update(JobRecord).where(JobRecord.job_id == job_id).values(updated_at=utcnow() - timedelta(seconds=seconds))
        )
        session.commit()


def status_of(rt, job_id: str) -> JobRecord:
    with rt.session() as session:
        return job_store.get_job(session, job_id)


def test_reconciler_enqueues_job_accepted_while_redis_was_down(client, runtime) -> None:
    working = runtime.redis
    runtime.redis = unreachable_redis(runtime.settings)
    job_id = submit(client)
    assert reconcile(runtime) is None  # Redis still down: nothing to do, no error
    runtime.redis = working
    backdate(runtime, job_id)
    report = reconcile(runtime)
    assert report.requeued_missing == 1
    run_jobs(runtime)
    assert status_of(runtime, job_id).status == "completed"


def test_reconciler_requeues_every_unfinished_job_after_flushall(client, runtime) -> None:
    ids = [submit(client, f"flush-{i}") for i in range(5)]
    reconcile(runtime)  # sets the epoch marker
    runtime.redis.flushall()
    for job_id in ids:
        backdate(runtime, job_id)
    report = reconcile(runtime)
    assert report.full_sweep and report.requeued_missing == 5
    run_jobs(runtime)
    assert {status_of(runtime, job_id).status for job_id in ids} == {"completed"}


def test_reconciler_leaves_fresh_and_present_jobs_alone(client, runtime) -> None:
    job_id = submit(client)
    report = reconcile(runtime)
    assert report.requeued_missing == 0 and report.requeued_orphans == 0
    backdate(runtime, job_id)
    assert reconcile(runtime).requeued_missing == 0  # still in RQ
    assert runtime.redis.llen(rq_queue_key("normal")) == 1


def test_reconciler_requeues_job_of_dead_worker_and_counts_the_attempt(client, runtime) -> None:
    job_id = submit(client)
    runtime.redis.delete(rq_queue_key("normal"))  # a worker took it ...
    with runtime.engine.begin() as connection:
        assert job_store.mark_started(connection, job_id) is not None  # ... started it, and died: no lease
    backdate(runtime, job_id)
    report = reconcile(runtime)
    assert report.requeued_orphans == 1
    row = status_of(runtime, job_id)
    assert row.status == "queued" and row.retry_count == 1 and "stopped" in row.error_message
    run_jobs(runtime)
    row = status_of(runtime, job_id)
    assert row.status == "completed" and row.attempts == 2


def test_reconciler_skips_job_whose_worker_holds_the_lease(client, runtime) -> None:
    job_id = submit(client)
    with runtime.engine.begin() as connection:
        job_store.mark_started(connection, job_id)
    runtime.redis.set(f"pdfjobs:lease:{job_id}", "123", ex=30)
    backdate(runtime, job_id)
    assert reconcile(runtime).requeued_orphans == 0
    assert status_of(runtime, job_id).status == "processing"


def test_reconciler_fails_orphan_with_no_attempts_left(client, runtime) -> None:
    job_id = submit(client)
    with runtime.session() as session:
        session.execute(update(JobRecord).where(JobRecord.job_id == job_id).values(attempts=3))
        session.commit()
    with runtime.engine.begin() as connection:
        job_store.mark_started(connection, job_id)
    backdate(runtime, job_id)
    assert reconcile(runtime).failed_orphans == 1
    row = status_of(runtime, job_id)
    assert row.status == "failed" and "no attempts left" in row.error_message


def test_reconciler_second_instance_does_nothing_while_first_holds_lock(client, runtime) -> None:
    job_id = submit(client)
    runtime.redis.flushall()
    backdate(runtime, job_id)
    runtime.redis.set(LOCK_KEY, "1", ex=30)
    assert reconcile(runtime) is None
    runtime.redis.delete(LOCK_KEY)
    assert reconcile(runtime).requeued_missing == 1
    assert reconcile(runtime).requeued_missing == 0
    assert runtime.redis.llen(rq_queue_key("normal")) == 1


def test_reconciler_rescues_job_stuck_in_intermediate_queue(client, runtime) -> None:
    job_id = submit(client)
    runtime.redis.lmove(rq_queue_key("normal"), rq_intermediate_key("normal"), "LEFT", "RIGHT")
    backdate(runtime, job_id)
    assert reconcile(runtime).rescued_intermediate == 1
    assert runtime.redis.lrange(rq_queue_key("normal"), 0, -1) == [job_id.encode()]
    run_jobs(runtime)
    assert status_of(runtime, job_id).status == "completed"


def test_duplicate_rq_entries_run_the_job_once(client, runtime) -> None:
    job_id = submit(client)
    runtime.redis.rpush(rq_queue_key("normal"), job_id)  # handed to RQ twice
    run_jobs(runtime)
    row = status_of(runtime, job_id)
    assert row.status == "completed" and row.attempts == 1


def test_reconciler_requeues_job_started_by_a_worker_that_died_before_its_claim(client, runtime) -> None:
    job_id = submit(client)
    runtime.redis.lpop(rq_queue_key("normal"))
    runtime.redis.hset(Job.key_for(job_id), mapping={"status": "started", "started_at": "2020-01-01T00:00:00.000000Z"})
    backdate(runtime, job_id)
    assert reconcile(runtime).requeued_missing == 1
    run_jobs(runtime)
    assert status_of(runtime, job_id).status == "completed"


def test_reconciler_requeues_job_rq_gave_up_on(client, runtime) -> None:
    job_id = submit(client)
    runtime.redis.lpop(rq_queue_key("normal"))
    runtime.redis.hset(Job.key_for(job_id), "status", "failed")
    backdate(runtime, job_id)
    assert reconcile(runtime).requeued_missing == 1
    run_jobs(runtime)
    assert status_of(runtime, job_id).status == "completed"


def test_reconciler_requeues_job_popped_by_worker_that_died_before_start(client, runtime, monkeypatch) -> None:
    monkeypatch.setattr("workers.reconciler.POPPED_RECHECK_PAUSE", 0.01)
    job_id, waiting_id = submit(client, "popped"), submit(client, "waiting")
    # A worker popped the first job (BLPOP) and was SIGKILLed before RQ marked it started.
    assert runtime.redis.lpop(rq_queue_key("normal")) == job_id.encode()
    assert runtime.redis.hget(Job.key_for(job_id), "status") == b"queued"
    backdate(runtime, job_id)
    backdate(runtime, waiting_id)
    report = reconcile(runtime)
    assert report.requeued_missing == 1  # the popped one; the one still listed is left alone
    assert set(runtime.redis.lrange(rq_queue_key("normal"), 0, -1)) == {job_id.encode(), waiting_id.encode()}
    run_jobs(runtime)
    assert {status_of(runtime, job_id).status, status_of(runtime, waiting_id).status} == {"completed"}


def test_reconciler_does_not_read_a_long_queue_whole(client, runtime, monkeypatch) -> None:
    monkeypatch.setattr("workers.reconciler.LISTED_SCAN_LIMIT", 0)
    monkeypatch.setattr("workers.reconciler.POPPED_RECHECK_PAUSE", 0.01)
    popped, _ = submit(client, "popped"), submit(client, "behind")
    runtime.redis.lpop(rq_queue_key("normal"))
    backdate(runtime, popped)
    assert reconcile(runtime).requeued_missing == 0  # found later, once the backlog is short
    runtime.redis.delete(rq_queue_key("normal"))
    assert reconcile(runtime).requeued_missing == 1
