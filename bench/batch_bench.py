"""Batch submit against single submits, on one service in one state: jobs accepted per second each way.

Single submits: the closed loop of the saturation step (bench/loadgen.py). Batches: `clients` threads of this
process post pre-built batches of `size` items back to back on keep-alive connections (one batch body is a
few MB: sending it costs the generator little next to the service's parsing, so threads suffice).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.loadgen import HOST, Connection, Target, run_load
from bench.service_bench import cpu_by_program, cpu_snapshot, service_pids
from ops.harness import RunningService

BATCH_PATH = "/api/reports/generate-batch"


@dataclass
class BatchRow:
    """One way of submitting: how many jobs were accepted in how long, and what it cost per program."""

    label: str
    clients: int
    requests: int
    accepted: int
    seconds: float
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def jobs_per_second(self) -> float:
        """Jobs accepted per second over the step."""
        return self.accepted / self.seconds if self.seconds else 0.0


@dataclass
class BatchResult:
    """Single submits and batches, measured one after the other on the same service."""

    size: int
    queued_before: int
    single: BatchRow
    batch: BatchRow

    @property
    def ratio(self) -> float:
        """Batch jobs/s over single-submit jobs/s."""
        return self.batch.jobs_per_second / self.single.jobs_per_second if self.single.jobs_per_second else 0.0


def batch_request(target: Target, tag: str, size: int) -> bytes:
    """The raw bytes of one batch of `size` items (the target's body, codes `<tag>-<n>`)."""
    items = [target.body | {"code": f"{tag}-{number}"} for number in range(size)]
    payload = json.dumps({"items": items}, separators=(",", ":")).encode()
    head = (f"POST {BATCH_PATH} HTTP/1.1\r\nHost: {HOST}:{target.port}\r\nAuthorization: Bearer {target.api_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
    return head.encode() + payload


def run_batches(service: RunningService, target: Target, *, size: int, batches: int, clients: int, tag: str
                ) -> BatchRow:
    """`batches` batches of `size` items from `clients` threads, back to back; bodies built before the clock."""
    bodies = [batch_request(target, f"{tag}-{number}", size) for number in range(batches)]
    lock = threading.Lock()
    row = BatchRow(f"batches of {size} ({clients} clients)", clients, batches, 0, 0.0)
    pids = service_pids(service)
    before = cpu_snapshot(pids)

    def client() -> None:
        connection = Connection(target.port)
        while True:
            with lock:
                if not bodies:
                    break
                data = bodies.pop()
            sent = time.perf_counter()
            status, body = connection.request(data, timeout=120)
            elapsed = time.perf_counter() - sent
            accepted = json.loads(body).get("accepted", 0) if status == 200 else 0
            with lock:
                row.statuses[status] += 1
                row.latencies.append(elapsed)
                row.accepted += accepted
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    row.seconds = time.perf_counter() - began
    row.cpu = cpu_by_program(before, pids)
    return row


def run_singles(service: RunningService, target: Target, *, seconds: float, processes: int, threads: int,
                tag: str) -> BatchRow:
    """Single submits in a closed loop for `seconds` (as the saturation step)."""
    pids = service_pids(service)
    before = cpu_snapshot(pids)
    result = run_load(target, tag=tag, processes=processes, threads=threads, max_requests=int(5000 * seconds),
                      duration=seconds)
    return BatchRow(f"single submits ({processes * threads} clients)", processes * threads,
                    sum(result.statuses.values()), result.count(202), result.duration, result.statuses,
                    result.latencies, cpu_by_program(before, pids))


def run_batch_comparison(service: RunningService, target: Target, *, size: int, batches: int, clients: int,
                         single_seconds: float, processes: int, threads: int, queued_before: int) -> BatchResult:
    """Single submits, then batches, on the same service."""
    stamp = int(time.time())
    single = run_singles(service, target, seconds=single_seconds, processes=processes, threads=threads,
                         tag=f"single-{stamp}")
    batch = run_batches(service, target, size=size, batches=batches, clients=clients, tag=f"batch-{stamp}")
    return BatchResult(size, queued_before, single, batch)
