"""Bare RQ: the same render function on the same number of `rq worker` processes, nothing else.

With `job_function=NULL_FUNCTION` the jobs do nothing: what is left is RQ's own cost per job (enqueue,
dequeue, bookkeeping, result), the bound under the service's coordination ceiling."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import redis
from rq import Queue, Worker
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq.utils import utcparse

from bench import machine
from bench.service_bench import cpu_seconds
from ops import embedded_redis

PROJECT_DIR = Path(__file__).resolve().parent.parent
QUEUE = "bench"
RENDER_FUNCTION = "bench.render_job.render_report"
WARM_UP_FUNCTION = "bench.render_job.warm_up"
NULL_FUNCTION = "bench.render_job.null_job"
DEFAULT_WORKER = "rq.worker.Worker"
SIMPLE_WORKER = "rq.worker.SimpleWorker"


@dataclass(frozen=True)
class BareResult:
    """Jobs done by bare RQ and how fast."""

    worker_class: str
    workers: int
    jobs: int
    finished: int
    failed: int
    seconds: float
    round_no: int = 1
    cpu_seconds: float = 0.0
    steal: float | None = None  # the machine's steal share during the round (bench.machine.steal_share)
    enqueue_cpu_seconds: float = 0.0  # the enqueuing thread's CPU (the API's share in the service)

    @property
    def cpu_per_job(self) -> float:
        """CPU seconds of the workers and redis-server per finished job."""
        return self.cpu_seconds / self.finished if self.finished else 0.0

    @property
    def enqueue_cpu_per_job(self) -> float:
        """CPU seconds of the enqueuing thread per finished job."""
        return self.enqueue_cpu_seconds / self.finished if self.finished else 0.0

    @property
    def jobs_per_second(self) -> float:
        """Finished jobs per second, first enqueue to last job end."""
        return self.finished / self.seconds if self.seconds > 0 else 0.0


def run_bare_rq(work_dir: Path, *, worker_class: str, workers: int, jobs: int, timeout: float,
                round_no: int = 1, job_function: str = RENDER_FUNCTION) -> BareResult:
    """Start a fresh embedded Redis and `workers` rq worker processes, run `jobs` calls of `job_function`
    (renders by default), stop all."""
    kind = "null" if job_function == NULL_FUNCTION else worker_class.rsplit('.', 1)[1].lower()
    redis_dir = work_dir / f"redis-{kind}-{round_no}"
    server = embedded_redis.start(redis_dir)
    url = f"unix://{redis_dir.resolve() / 'redis.sock'}"
    connection = redis.Redis.from_url(url)
    log = open(redis_dir / "rq-worker.log", "ab")  # noqa: SIM115 - closed below
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "rq.cli", "worker", "--url", url, "-w", worker_class, QUEUE],
            cwd=PROJECT_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        for _ in range(workers)
    ]
    try:
        _wait_for_workers(connection, workers, processes)
        _warm_up(connection, workers, timeout)
        pids = [process.pid for process in processes] + [server.pid]
        before = sum(cpu_seconds(pid) for pid in pids)
        result = _measure(connection, worker_class, workers, jobs, timeout, round_no, job_function)
        return replace(result, cpu_seconds=sum(cpu_seconds(pid) for pid in pids) - before)
    finally:
        _stop(processes)
        log.close()
        connection.close()
        server.terminate()
        server.wait(timeout=30)


def _wait_for_workers(connection: redis.Redis, count: int, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while Worker.count(connection=connection) < count:
        if any(process.poll() is not None for process in processes):
            raise RuntimeError("an rq worker exited at start; see its log in the bench work dir")
        if time.monotonic() > deadline:
            raise TimeoutError("rq workers did not register within 60 s")
        time.sleep(0.05)


def _warm_up(connection: redis.Redis, workers: int, timeout: float) -> None:
    """Render once in every worker process before the clock starts, as the service's workers have.

    `rq worker` imports the job's module at its first job: reportlab and the templates, 0.2-0.25 s
    (against ~22 ms per render), which would count in a round of a few seconds. Jobs go in one at a
    time until as many distinct worker processes have answered as there are workers. The forking
    Worker imports in every child anyway: its warm-up changes nothing of its rate.
    """
    queue = Queue(QUEUE, connection=connection)
    warm: set[int] = set()
    deadline = time.monotonic() + timeout
    for number in range(8 * workers):
        if len(warm) >= workers or time.monotonic() > deadline:
            break
        job = queue.enqueue_call(WARM_UP_FUNCTION, args=(f"warm-{number}",), job_id=f"warm-{number}")
        while job.get_status(refresh=True) not in ("finished", "failed") and time.monotonic() < deadline:
            time.sleep(0.01)
        if job.return_value() is not None:
            warm.add(int(job.return_value()))
    if len(warm) < workers:
        raise TimeoutError(f"only {len(warm)} of {workers} rq workers answered a warm-up job")


def _measure(connection: redis.Redis, worker_class: str, workers: int, jobs: int, timeout: float,
             round_no: int, job_function: str) -> BareResult:
    queue = Queue(QUEUE, connection=connection)
    finished_registry = FinishedJobRegistry(queue=queue)
    failed_registry = FailedJobRegistry(queue=queue)
    ids = [f"bare-{n}" for n in range(jobs)]
    finished_before, failed_before = finished_registry.count, failed_registry.count  # the warm-up jobs
    ticks = machine.cpu_ticks()
    started, enqueue_started = time.time(), time.thread_time()
    for job_id in ids:  # one enqueue per job, as the API does one per submit
        queue.enqueue_call(job_function, args=(job_id,), job_id=job_id)
    enqueue_cpu = time.thread_time() - enqueue_started
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if finished_registry.count + failed_registry.count - finished_before - failed_before >= jobs:
            break
        # The end is read from the jobs' ended_at: polling oftener would only take CPU from the workers.
        time.sleep(0.05)
    finished, failed = finished_registry.count - finished_before, failed_registry.count - failed_before
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(Job.key_for(job_id), "ended_at")
        ends = [utcparse(value.decode()).timestamp() for value in pipe.execute() if value]
    seconds = (max(ends) if ends else time.time()) - started
    steal = machine.steal_share(ticks, machine.cpu_ticks())
    return BareResult(worker_class, workers, jobs, finished, failed, seconds, round_no, steal=steal,
                      enqueue_cpu_seconds=enqueue_cpu)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
