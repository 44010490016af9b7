"""Submit path: latency at fixed rates and at saturation, cost growth with the queue, Redis memory."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from rq import Queue
from sqlalchemy import delete

from bench.fill import fill_queue
from bench.loadgen import Connection, LoadResult, Target, run_load
from bench.service_bench import CLIENT_NAME, cpu_by_program, cpu_snapshot, service_pids
from jobs.queues import PDF_QUEUES
from jobs.runtime import Runtime
from ops.harness import RunningService
from store.models import QUEUED, JobRecord

DELIBERATE = (429, 503)
# Pairs per block of the paired growth measurement: the reference and the filled queue take turns this
# often, so a slow spell of the machine (seconds long) falls on both.
REFERENCE_BLOCK = 100


@dataclass
class RateRow:
    """One load step: offered rate (0 = closed loop), what was accepted and how fast."""

    label: str
    offered: float
    queued_before: int
    result: LoadResult
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def accepted_per_second(self) -> float:
        """202 answers per second over the step."""
        return self.result.count(202) / self.result.duration

    @property
    def errors(self) -> int:
        """Answers that are neither 202 nor a deliberate 429/503."""
        return sum(self.result.statuses.values()) - self.result.count(202, *DELIBERATE)

    @property
    def generator_cpu(self) -> float:
        """The generator's CPU use as a fraction of one core."""
        return self.result.cpu_seconds / self.result.duration


def queued(service: RunningService) -> int:
    """Jobs waiting in the PDF queues."""
    client = service.redis()
    try:
        return sum(len(Queue(name, connection=client)) for name in PDF_QUEUES)
    finally:
        client.close()


def run_rates(service: RunningService, target: Target, *, rates: list[int], seconds: float,
              processes: int, threads: int) -> list[RateRow]:
    """Open-loop steps at fixed request rates, bounded by rate x seconds requests each."""
    rows = []
    pids = service_pids(service)
    for rate in rates:
        before, cpu = queued(service), cpu_snapshot(pids)
        result = run_load(target, tag=f"rate{rate}-{int(time.time())}", processes=processes, threads=threads,
                          max_requests=int(rate * seconds), duration=seconds + 5, rate=rate)
        rows.append(RateRow(f"{rate} req/s", rate, before, result, cpu_by_program(cpu, pids)))
    return rows


def run_saturation(service: RunningService, target: Target, *, seconds: float, processes: int, threads: int,
                   max_requests: int) -> RateRow:
    """Closed loop: processes x threads clients submitting back to back for `seconds`."""
    pids = service_pids(service)
    before, cpu = queued(service), cpu_snapshot(pids)
    result = run_load(target, tag=f"sat-{int(time.time())}", processes=processes, threads=threads,
                      max_requests=max_requests, duration=seconds)
    return RateRow(f"saturation ({processes * threads} clients)", 0, before, result, cpu_by_program(cpu, pids))


@dataclass
class CostRow:
    """Serial submit and status latency with `queued` jobs waiting."""

    queued: int
    submit: list[float] = field(default_factory=list)
    status: list[float] = field(default_factory=list)
    errors: int = 0
    redis_forks: int = 0  # background saves (RDB or AOF rewrite) Redis forked for while the row ran


def redis_info(service: RunningService, section: str, key: str) -> int:
    """One integer field of the service's Redis INFO (e.g. "memory", "used_memory")."""
    client = service.redis()
    try:
        return int(client.info(section)[key])
    finally:
        client.close()


def redis_forks(service: RunningService) -> int:
    """How many times Redis has forked for a background save since it started (INFO stats total_forks)."""
    return redis_info(service, "stats", "total_forks")


def measure_cost(service: RunningService, target: Target, *, samples: int, tag: str) -> CostRow:
    """One client: submit a job, then read its status; `samples` times, one request at a time."""
    connection = Connection(target.port)
    row, forks_before = CostRow(queued(service)), redis_forks(service)
    _take_samples(connection, target, row, samples, tag)
    connection.close()
    row.redis_forks = redis_forks(service) - forks_before
    return row


def _take_samples(connection: Connection, target: Target, row: CostRow, count: int, tag: str) -> None:
    """Add `count` submit + status pairs to `row`, one request at a time."""
    for number in range(count):
        sent = time.perf_counter()
        status, body = connection.request(target.submit_request(f"{tag}-{number}"))
        row.submit.append(time.perf_counter() - sent)
        if status != 202:
            row.errors += 1
            continue
        job_id = json.loads(body)["job_id"]
        sent = time.perf_counter()
        status, body = connection.request(target.status_request(job_id))
        row.status.append(time.perf_counter() - sent)
        row.errors += status != 200


@dataclass(frozen=True)
class Reference:
    """A second service, like the measured one, whose queue is kept empty: the same minute's baseline."""

    service: RunningService
    target: Target
    rt: Runtime


def measure_paired(service: RunningService, target: Target, reference: Reference, *, samples: int, tag: str,
                   block: int = REFERENCE_BLOCK) -> tuple[CostRow, CostRow]:
    """The cost on `service` and, interleaved block by block, on the reference with its queue emptied
    before each block: drift of the machine hits both rows alike, so their ratio is the queue's own growth."""
    row, baseline, forks_before = CostRow(queued(service)), CostRow(0), redis_forks(service)
    connection, reference_connection = Connection(target.port), Connection(reference.target.port)
    for number, start in enumerate(range(0, samples, block)):
        count = min(block, samples - start)
        empty_queue(reference.rt)
        steps = [(reference_connection, reference.target, baseline, f"{tag}-ref{start}"),
                 (connection, target, row, f"{tag}-{start}")]
        for step_connection, step_target, step_row, step_tag in (steps[::-1] if number % 2 else steps):
            _take_samples(step_connection, step_target, step_row, count, step_tag)
    connection.close()
    reference_connection.close()
    row.redis_forks = redis_forks(service) - forks_before
    return row, baseline


@dataclass
class Growth:
    """Cost growth rows and Redis memory per queued job."""

    rows: list[CostRow] = field(default_factory=list)
    bytes_per_job: float = 0.0
    filled: int = 0
    fill_seconds: float = 0.0
    http_bytes_per_job: float = 0.0
    http_jobs: int = 0
    references: list[CostRow] = field(default_factory=list)  # the reference's row measured with each row


def used_memory(service: RunningService) -> int:
    """Redis INFO memory used_memory, in bytes."""
    return redis_info(service, "memory", "used_memory")


def run_growth(service: RunningService, rt: Runtime, target: Target, reference: Reference, *, sizes: list[int],
               samples: int, growth: Growth) -> Growth:
    """Fill the queue to each size (bulk, through the enqueue options of the API) and measure it, paired
    with the empty reference."""
    for size in sizes:
        missing = size - queued(service)
        if missing > 0:
            memory_before = used_memory(service)
            began = time.perf_counter()
            fill_queue(rt, missing, client_name=CLIENT_NAME, body=target.body, tag=f"fill{size}")
            growth.fill_seconds += time.perf_counter() - began
            growth.filled += missing
            growth.bytes_per_job = (used_memory(service) - memory_before) / missing
        row, baseline = measure_paired(service, target, reference, samples=samples, tag=f"cost{size}")
        growth.rows.append(row)
        growth.references.append(baseline)
    return growth


def empty_queue(rt: Runtime) -> None:
    """Remove every queued job: RQ's queues (their jobs with them) and the SQL rows still queued."""
    for name in PDF_QUEUES:
        Queue(name, connection=rt.redis).empty()
    with rt.session() as session:
        session.execute(delete(JobRecord).where(JobRecord.status == QUEUED))
        session.commit()
