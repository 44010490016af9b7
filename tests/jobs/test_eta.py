"""Queue position and ETA: exact for FIFO queues, O(1) Redis commands however long the queue."""

from __future__ import annotations

from datetime import timedelta

from rq import Queue
from rq.job import Job

from jobs import eta
from jobs.queues import rq_queue_key
from jobs.submit import JobRequest, enqueue_job, submit_job
from store import jobs as job_store
from store.models import utcnow
from tests.conftest import sample_request
from workers.rq_worker import PdfWorker


def submit(rt, code: str, priority: str = "normal") -> str:
    data = sample_request()["data"]
    return submit_job(rt, "acme", JobRequest(code=code, product_id="minatBakatUmum", priority=priority,
                                             data=data)).job.job_id


def position(rt, job_id: str) -> int | None:
    with rt.session() as session:
        job = job_store.get_job(session, job_id)
    return eta.estimate(rt, job)[0]


def run_one(rt) -> None:
    PdfWorker([Queue("normal", connection=rt.redis)], connection=rt.redis).work(burst=True, max_jobs=1)


def live_worker(rt) -> PdfWorker:
    worker = PdfWorker([Queue(name, connection=rt.redis) for name in ("high", "normal", "low")],
                       connection=rt.redis)
    worker.register_birth()
    return worker


def test_eta_position_counts_higher_priority_queues_and_fifo_order(runtime) -> None:
    normal = [submit(runtime, f"n{i}") for i in range(3)]
    high = [submit(runtime, f"h{i}", "high") for i in range(2)]
    low = submit(runtime, "l0", "low")
    assert [position(runtime, job_id) for job_id in high] == [0, 1]
    assert [position(runtime, job_id) for job_id in normal] == [2, 3, 4]
    assert position(runtime, low) == 5


def test_eta_position_moves_as_workers_take_jobs(runtime) -> None:
    jobs = [submit(runtime, f"n{i}") for i in range(4)]
    run_one(runtime)
    run_one(runtime)
    assert position(runtime, jobs[0]) is None  # completed
    assert [position(runtime, job_id) for job_id in jobs[2:]] == [0, 1]


def test_eta_position_of_job_requeued_at_front_is_zero(runtime) -> None:
    first, second = submit(runtime, "a"), submit(runtime, "b")
    with runtime.session() as session:
        job = job_store.get_job(session, second)
    runtime.redis.lrem(rq_queue_key("normal"), 1, second)
    enqueue_job(runtime, job, at_front=True)
    assert position(runtime, second) == 0
    assert position(runtime, first) == 1
    run_one(runtime)
    assert position(runtime, first) == 0


def test_eta_status_stays_o1_with_100000_jobs_queued(runtime) -> None:
    runtime.settings = runtime.settings.with_changes(max_queue_size=200_000)
    filler = [f"pdf_filler{i:06d}" for i in range(100_000)]
    for start in range(0, len(filler), 10_000):
        runtime.redis.rpush(rq_queue_key("normal"), *filler[start:start + 10_000])
    runtime.redis.set(eta.TICKET_KEY.format("normal"), 100_000)
    job_id = submit(runtime, "deep")
    runtime.redis.config_resetstat()
    assert position(runtime, job_id) == 100_000
    commands = {name.removeprefix("cmdstat_") for name in runtime.redis.info("commandstats")}
    assert not commands & {"lpos", "lrange", "lindex", "scan", "keys", "sort"}, commands


def test_eta_estimate_uses_measured_average_and_live_workers(runtime) -> None:
    jobs = [submit(runtime, f"n{i}") for i in range(5)]
    with runtime.session() as session:
        last = job_store.get_job(session, jobs[-1])
    assert eta.estimate(runtime, last) == (4, None)  # no worker alive: no completion estimate
    for milliseconds in (3000, 5000):
        eta.record_duration(runtime.redis, milliseconds)
    one, two = live_worker(runtime), live_worker(runtime)
    try:
        before = utcnow()
        position_, completion = eta.estimate(runtime, last)
        # 4 jobs ahead, 2 workers, 4 s average: done after 3 rounds of 4 s
        assert position_ == 4
        assert before + timedelta(seconds=12) <= completion <= utcnow() + timedelta(seconds=12)
    finally:
        one.register_death()
        two.register_death()


def test_eta_average_is_recorded_when_jobs_complete(runtime) -> None:
    from tests.conftest import run_jobs

    submit(runtime, "a")
    run_jobs(runtime)
    samples = runtime.redis.lrange(eta.DURATIONS_KEY, 0, -1)
    assert len(samples) == 1
    assert int(runtime.redis.get(eta.AVERAGE_KEY)) == int(samples[0])


def test_eta_scheduled_job_completes_after_its_run_at(runtime) -> None:
    run_at = utcnow() + timedelta(hours=1)
    data = sample_request()["data"]
    job = submit_job(runtime, "acme", JobRequest(code="later", product_id="minatBakatUmum", data=data,
                                                 run_at=run_at)).job
    position_, completion = eta.estimate(runtime, job)
    assert position_ is None and completion >= run_at


def test_eta_job_taken_by_a_worker_right_after_submit_still_has_an_estimate(runtime) -> None:
    job_id = submit(runtime, "just-taken")
    with runtime.session() as session:
        job = job_store.get_job(session, job_id)  # read while still queued
    runtime.redis.lpop(rq_queue_key("normal"))  # ... and a worker takes it at once
    runtime.redis.hset(Job.key_for(job_id), "status", "started")
    eta.record_duration(runtime.redis, 2000)
    worker = live_worker(runtime)
    try:
        before = utcnow()
        position_, completion = eta.estimate(runtime, job)
    finally:
        worker.register_death()
    assert position_ is None
    assert before + timedelta(seconds=2) <= completion <= utcnow() + timedelta(seconds=2)


def test_admit_takes_a_ticket_only_under_the_limit_and_when_asked(runtime) -> None:
    ticket_key = eta.TICKET_KEY.format("normal")
    assert eta.admit(runtime.redis, "normal", 10, take_ticket=True) == (0, 1)
    assert eta.admit(runtime.redis, "normal", 10, take_ticket=False) == (0, None)  # a scheduled job
    runtime.redis.rpush(rq_queue_key("high"), "x", "y")
    assert eta.admit(runtime.redis, "normal", 2, take_ticket=True) == (2, None)  # full: no ticket spent
    assert int(runtime.redis.get(ticket_key)) == 1


def test_submit_answer_position_comes_from_the_enqueue_round_trip(runtime) -> None:
    first = submit_job(runtime, "acme", JobRequest(code="a", product_id="minatBakatUmum",
                                                   data=sample_request()["data"]))
    second = submit_job(runtime, "acme", JobRequest(code="b", product_id="minatBakatUmum",
                                                    data=sample_request()["data"]))
    assert second.snapshot is not None and second.snapshot.rq_status == "queued"
    assert eta.position_from(second.snapshot) == 1 == position(runtime, second.job.job_id)
    assert eta.position_from(first.snapshot) == 0
