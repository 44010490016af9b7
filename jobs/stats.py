"""Queue stats and alerts: Redis for queues and workers, SQL (indexed) for the last hour's outcomes."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.registry import ScheduledJobRegistry
from rq.utils import now

from jobs.lease import leases_held
from jobs.queues import PDF_QUEUES, WEBHOOK_READY, rq_queue_key
from jobs.runtime import Runtime
from store import schedules as schedule_store
from store import stats as stats_store
from store.models import CANCELLED, COMPLETED, FAILED, PROCESSING, QUEUED, SCHEDULED, utcnow

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=1)
# An idle PDF worker heartbeats every IDLE_HEARTBEAT_EVERY seconds (RQ's dequeue timeout: worker_ttl - 15,
# workers.pdf_worker); one silent for IDLE_SILENCE_LIMIT is dead, although RQ keeps its key for
# worker_ttl + 60 s. A busy one proves it lives by its job's lease (jobs/lease.py).
PDF_WORKER_TTL = 35
IDLE_HEARTBEAT_EVERY = PDF_WORKER_TTL - 15
IDLE_SILENCE_LIMIT = IDLE_HEARTBEAT_EVERY + 10


@dataclass(frozen=True)
class Alert:
    """One active alert: what crossed which threshold."""

    name: str
    message: str
    value: float | None
    threshold: float | None


def redis_side(rt: Runtime) -> dict[str, Any]:
    """Queue lengths (the webhook sender's list too), retries waiting and live PDF workers by state and host."""
    with rt.redis.pipeline(transaction=False) as pipe:
        for name in PDF_QUEUES:
            pipe.llen(rq_queue_key(name))
        pipe.llen(WEBHOOK_READY)
        *lengths, webhook_queue = pipe.execute()
    queues = dict(zip(PDF_QUEUES, lengths, strict=True))
    retrying = sum(ScheduledJobRegistry(name, connection=rt.redis).count for name in PDF_QUEUES)
    return {
        "queues": queues,
        "webhook_queue": webhook_queue,
        "retry_waiting": retrying,
        "workers": worker_counts(live_workers(rt)),
    }


def live_workers(rt: Runtime) -> list[tuple[str, str]]:
    """(host, "busy"|"idle") of each PDF worker alive now; RQ's registry also lists dead ones for minutes.

    Busy: its job's lease exists, or it started the job less than STALE_JOB_GRACE ago (RQ heartbeats
    at a job's start; the lease is taken a moment later). Idle: it heartbeated within IDLE_SILENCE_LIMIT.
    A dead worker so stops counting within STALE_JOB_GRACE (busy) or IDLE_SILENCE_LIMIT (idle).
    """
    workers = Worker.all(connection=rt.redis, queue=Queue(PDF_QUEUES[0], connection=rt.redis))
    busy = {worker.name: worker.get_current_job_id() for worker in workers if worker.get_state() == "busy"}
    leased = leases_held(rt.redis, [job_id for job_id in busy.values() if job_id])
    current = now()
    alive = []
    for worker in workers:
        silent = (current - worker.last_heartbeat).total_seconds() if worker.last_heartbeat else float("inf")
        if worker.name in busy:
            live = leased.get(busy[worker.name] or "", False) or silent < rt.settings.stale_job_grace
        else:
            live = silent < IDLE_SILENCE_LIMIT
        if live:
            alive.append((worker.hostname or "unknown", "busy" if worker.name in busy else "idle"))
    return alive


def worker_counts(alive: list[tuple[str, str]]) -> dict[str, Any]:
    """Totals and the same per host, from `live_workers`."""
    def counts(states: list[str]) -> dict[str, int]:
        busy = states.count("busy")
        return {"total": len(states), "busy": busy, "idle": len(states) - busy}

    hosts = sorted({host for host, _ in alive})
    by_host = {host: counts([state for name, state in alive if name == host]) for host in hosts}
    return counts([state for _, state in alive]) | {"by_host": by_host}


def sql_side(rt: Runtime) -> dict[str, Any]:
    """Scheduled/processing counts, recurring schedules and the last hour's outcomes and processing times."""
    since = utcnow() - WINDOW
    with rt.session() as session:
        ended = stats_store.ended_since(session, since)
        times = stats_store.processing_times_since(session, since)
        scheduled = stats_store.count_in_state(session, SCHEDULED)
        processing = stats_store.count_in_state(session, PROCESSING)
        queued = stats_store.count_in_state(session, QUEUED)
        schedules, next_run = schedule_store.active_summary(session)
    completed, failed = ended.get(COMPLETED, 0), ended.get(FAILED, 0)
    finished = completed + failed
    return {
        "scheduled": scheduled,
        "processing": processing,
        "queued_in_sql": queued,
        "schedules_active": schedules,
        "next_schedule_run_at": next_run,
        "last_hour": {
            "completed": completed,
            "failed": failed,
            "cancelled": ended.get(CANCELLED, 0),
            "failure_rate": round(failed / finished, 4) if finished else 0.0,
            "avg_processing_seconds": round(times.average_ms / 1000, 3) if times.average_ms is not None else None,
            "p95_processing_seconds": round(times.p95_ms / 1000, 3) if times.p95_ms is not None else None,
        },
    }


def queue_stats(rt: Runtime) -> dict[str, Any]:
    """Everything GET /api/queue/stats answers; Redis trouble is reported as an alert, not an error."""
    stats = sql_side(rt)
    try:
        stats |= redis_side(rt)
    except RedisError as exc:
        log.warning("event=stats_redis_unavailable reason=%r", str(exc))
        stats |= {"queues": None, "webhook_queue": None, "retry_waiting": None, "workers": None}
    stats["alerts"] = [asdict(alert) for alert in alerts(rt, stats)]
    stats["generated_at"] = utcnow()
    return stats


def alerts(rt: Runtime, stats: dict[str, Any]) -> list[Alert]:
    """The alerts whose thresholds (ALERT_* settings) are crossed."""
    settings = rt.settings
    found: list[Alert] = []
    if stats["queues"] is None:
        found.append(Alert("redis_unavailable", "Redis does not answer: jobs are accepted but not run.", None, None))
    else:
        waiting = sum(stats["queues"].values())
        if waiting > settings.alert_queue_length:
            found.append(Alert("queue_length", f"{waiting} jobs are waiting (more than "
                               f"{settings.alert_queue_length}); add workers.", waiting, settings.alert_queue_length))
        if stats["workers"]["total"] == 0:
            found.append(Alert("no_workers", "No PDF worker is running: queued jobs will not start.", 0, None))
    hour = stats["last_hour"]
    if hour["failure_rate"] > settings.alert_failure_rate:
        found.append(Alert("failure_rate", f"{hour['failure_rate']:.1%} of the jobs that ended in the last hour "
                           f"failed (threshold {settings.alert_failure_rate:.1%}).",
                           hour["failure_rate"], settings.alert_failure_rate))
    average = hour["avg_processing_seconds"]
    if average is not None and average > settings.alert_avg_processing_seconds:
        found.append(Alert("avg_processing_time", f"Jobs took {average:.1f} s on average in the last hour "
                           f"(threshold {settings.alert_avg_processing_seconds:.0f} s).",
                           average, settings.alert_avg_processing_seconds))
    return found
