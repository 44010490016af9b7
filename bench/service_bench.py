"""The real service under load: end-to-end throughput, idle pickup and webhook latency, memory."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from rq.job import Job
from rq.utils import utcparse
from sqlalchemy import func, select

from bench import machine
from bench.loadgen import Connection, Target, run_load
from bench.receiver import WebhookReceiver
from bench.sample_data import SAMPLE
from callbacks.signing import new_webhook_secret
from ops.harness import RunningService
from store.models import COMPLETED, FINAL_STATES, JobRecord

CLIENT_NAME = "bench"
API_KEY = "bench-key-0123456789abcdef"


def webhooks_available() -> bool:
    """Whether this checkout delivers webhooks (the webhook sender module exists)."""
    return importlib.util.find_spec("workers.webhook_sender") is not None


def new_secret() -> str:
    """A webhook signing secret for the bench client."""
    return new_webhook_secret()


def service_env(secret: str, *, workers: int, max_queue: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the bench runs the service with (one client, loopback callbacks)."""
    clients = [{"name": CLIENT_NAME, "api_key": API_KEY, "webhook_secret": secret}]
    return {
        "API_CLIENTS": json.dumps(clients),
        "CALLBACK_ALLOWED_HOSTS": "127.0.0.0/8",
        "WORKERS": str(workers),
        "MAX_QUEUE_SIZE": str(max_queue),
        # one client stands for all of them: its request rate and queued jobs are not what the bench limits
        "RATE_LIMIT": "1000000/minute",
        "MAX_QUEUED_PER_CLIENT": str(max_queue),
        "LOOPBACK_ONLY": "1",
        **(extra or {}),
    }


def target_for(service: RunningService, callback: str | None) -> Target:
    """The load target: the service's port, the bench key and the sample body with our callback, its data
    varied per submit (Typst reuses the layout renders share: the same data in every job would flatter)."""
    body = json.loads(SAMPLE.read_text())
    if callback:
        body["callback"] = callback
    return Target(service.port, API_KEY, body, vary_data=True)


@dataclass
class E2EResult:
    """N jobs through the whole service."""

    jobs: int
    completed: int
    webhooks: int
    seconds: float
    end_marker: str
    submit_statuses: dict[int, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    steal: float | None = None  # the machine's steal share during the round (bench.machine.steal_share)

    @property
    def cpu_per_job(self) -> float:
        """CPU seconds of every service process (not the load generator) per completed job."""
        used = sum(seconds for name, seconds in self.cpu.items() if name != "load generator")
        return used / self.completed if self.completed else 0.0

    @property
    def jobs_per_second(self) -> float:
        """Completed jobs per second, first submit to last completion (or webhook)."""
        return self.completed / self.seconds if self.seconds > 0 else 0.0


def run_e2e(service: RunningService, target: Target, receiver: WebhookReceiver, *, jobs: int, tag: str,
            timeout: float, clients: int = 4) -> E2EResult:
    """Submit `jobs` jobs over HTTP (`clients` clients); time until all are completed and called back."""
    pids = service_pids(service)
    before = cpu_snapshot(pids)
    ticks = machine.cpu_ticks()
    load = run_load(target, tag=tag, processes=1, threads=clients, max_requests=jobs, duration=timeout,
                    keep_bodies=True)
    started = load.wall_started
    ids = {json.loads(body)["job_id"] for body in load.bodies if body.startswith(b"{") and b"job_id" in body}
    factory = service.session_factory()
    deadline = time.monotonic() + timeout
    hooks = webhooks_available()
    if hooks:
        # Wait on the receiver first: it costs no CPU while waiting, where polling SQL every 50 ms
        # cost ~0.5 ms per job on the cores the service is using. A webhook leaves after its job is final.
        receiver.wait_for(ids, timeout)
    while time.monotonic() < deadline and _final_count(factory, ids) < len(ids):
        time.sleep(0.05)
    ends = _completed_times(factory, ids)
    end, marker = (max(ends) if ends else time.time()), "SQL completed_at"
    webhooks = 0
    if hooks:
        receiver.wait_for(ids, max(1.0, deadline - time.monotonic()))
        arrived = [receiver.arrivals[job_id] for job_id in ids if job_id in receiver.arrivals]
        webhooks = len(arrived)
        if webhooks == len(ids) and arrived:
            end, marker = max(arrived), "webhook received"
    steal = machine.steal_share(ticks, machine.cpu_ticks())  # also over the load generator's start (~1 s)
    cpu = cpu_by_program(before, pids) | {"load generator": load.cpu_seconds}
    return E2EResult(jobs, len(ends), webhooks, end - started, marker, dict(load.statuses), cpu, steal)


def _final_count(factory, ids: set[str]) -> int:  # noqa: ANN001
    with factory() as session:
        query = select(func.count()).select_from(JobRecord).where(
            JobRecord.job_id.in_(ids), JobRecord.status.in_(FINAL_STATES)
        )
        return session.scalar(query) or 0


def _completed_times(factory, ids: set[str]) -> list[float]:  # noqa: ANN001
    with factory() as session:
        rows = session.scalars(
            select(JobRecord.completed_at).where(JobRecord.job_id.in_(ids), JobRecord.status == COMPLETED)
        ).all()
    return [moment.timestamp() for moment in rows]


@dataclass
class IdleLatency:
    """Per-job latencies with idle workers, in seconds."""

    pickup: list[float] = field(default_factory=list)
    to_enqueued: list[float] = field(default_factory=list)
    dequeue: list[float] = field(default_factory=list)
    run: list[float] = field(default_factory=list)
    to_webhook: list[float] = field(default_factory=list)
    submit_to_webhook: list[float] = field(default_factory=list)


def run_idle_latency(service: RunningService, target: Target, receiver: WebhookReceiver, *, count: int,
                     pause: float = 0.2, timeout: float = 30) -> IdleLatency:
    """Submit one job at a time to idle workers; pickup (created -> started) and completed -> webhook."""
    connection = Connection(target.port)
    factory = service.session_factory()
    hooks = webhooks_available()
    result = IdleLatency()
    for number in range(count):
        sent = time.time()
        status, body = connection.request(target.submit_request(f"idle-{number}-{int(sent)}"))
        if status != 202:
            raise RuntimeError(f"idle submit answered {status}: {body[:200]!r}")
        job_id = json.loads(body)["job_id"]
        _wait_final(factory, job_id, timeout)
        if hooks:
            receiver.wait_for({job_id}, timeout)
        with factory() as session:
            row = session.get(JobRecord, job_id)
        if row is None or row.started_at is None or row.completed_at is None:
            raise RuntimeError(f"job {job_id} did not complete: {row and row.status}")
        result.pickup.append((row.started_at - row.created_at).total_seconds())
        enqueued, rq_started = _rq_times(service, job_id)
        if enqueued and rq_started:
            result.to_enqueued.append(enqueued - row.created_at.timestamp())
            result.dequeue.append(rq_started - enqueued)
        result.run.append((row.completed_at - row.started_at).total_seconds())
        if job_id in receiver.arrivals:
            result.to_webhook.append(receiver.arrivals[job_id] - row.completed_at.timestamp())
            result.submit_to_webhook.append(receiver.arrivals[job_id] - sent)
        time.sleep(pause)
    connection.close()
    return result


def _rq_times(service: RunningService, job_id: str) -> tuple[float | None, float | None]:
    """RQ's own enqueued_at and started_at of a job (wall-clock seconds)."""
    client = service.redis()
    try:
        values = client.hmget(Job.key_for(job_id), "enqueued_at", "started_at")
    finally:
        client.close()
    return tuple(utcparse(v.decode()).timestamp() if v else None for v in values)  # type: ignore[return-value]


def _wait_final(factory, job_id: str, timeout: float) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with factory() as session:
            status = session.scalar(select(JobRecord.status).where(JobRecord.job_id == job_id))
        if status in FINAL_STATES:
            return
        time.sleep(0.01)
    raise TimeoutError(f"job {job_id} not final after {timeout} s")


def service_pids(service: RunningService) -> list[tuple[str, int]]:
    """(label, pid) of every process of the service, supervisord and gunicorn's workers included."""
    pids = [("supervisord", service.process.pid)] if service.process else []
    for program in ("api", "pdf_worker", "webhook_worker", "scheduler", "redis"):
        for number, pid in enumerate(service.program_pids(program)):
            pids.append((f"{program}[{number}]", pid))
            pids += [(f"{program}[{number}] child", child) for child in _children(pid)]
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process and its waited-for children have used (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime + stime + cutime + cstime: a forking worker's finished work-horses count for their parent.
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def cpu_by_program(before: dict[str, float], pids: list[tuple[str, int]]) -> dict[str, float]:
    """CPU seconds each program used since `before` (a snapshot from cpu_snapshot)."""
    used: dict[str, float] = {}
    for label, pid in pids:
        program = label.split("[")[0]
        used[program] = used.get(program, 0.0) + cpu_seconds(pid) - before.get(f"{label}:{pid}", 0.0)
    return used


def cpu_snapshot(pids: list[tuple[str, int]]) -> dict[str, float]:
    """CPU seconds of each process now."""
    return {f"{label}:{pid}": cpu_seconds(pid) for label, pid in pids}


def rss_by_process(service: RunningService) -> list[tuple[str, int]]:
    """(label, RSS in KiB) of every service process: api (gunicorn master and workers), workers, scheduler."""
    rows = []
    for program in ("api", "pdf_worker", "webhook_worker", "scheduler", "redis"):
        for number, pid in enumerate(service.program_pids(program)):
            rows.append((f"{program}[{number}] pid {pid}", _rss_kib(pid)))
            for child in _children(pid):
                rows.append((f"{program}[{number}] child pid {child}", _rss_kib(child)))
    return rows


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return sorted(children)
