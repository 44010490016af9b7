"""Queue position and estimated completion, from measured processing times and live workers."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from redis.exceptions import RedisError

from store.models import PROCESSING, QUEUED, SCHEDULED, JobRecord, utcnow
from workers.queues import PDF_QUEUES
from workers.runtime import Runtime

log = logging.getLogger(__name__)

DURATIONS_KEY = "pdfjobs:durations"
DURATION_SAMPLES = 200
# LPOS scans the list; past this many entries the position is reported as unknown (None).
MAX_SCAN = 10_000
DEFAULT_SECONDS = 2.0


def record_duration(rt: Runtime, milliseconds: int) -> None:
    """Remember a job's processing time (the newest DURATION_SAMPLES are kept)."""
    try:
        with rt.redis.pipeline(transaction=False) as pipe:
            pipe.lpush(DURATIONS_KEY, milliseconds)
            pipe.ltrim(DURATIONS_KEY, 0, DURATION_SAMPLES - 1)
            pipe.execute()
    except RedisError:
        pass


def average_seconds(rt: Runtime) -> float:
    """Mean processing time of recent jobs (a default before any job finished)."""
    samples = [int(value) for value in rt.redis.lrange(DURATIONS_KEY, 0, DURATION_SAMPLES - 1)]
    return sum(samples) / len(samples) / 1000 if samples else DEFAULT_SECONDS


def live_workers(rt: Runtime) -> int:
    """Workers registered on the PDF queues."""
    return int(rt.redis.scard(f"rq:workers:{PDF_QUEUES[0]}"))


def queue_position(rt: Runtime, job: JobRecord) -> int | None:
    """Jobs ahead of this one, counting higher-priority queues; None when not waiting or unknown."""
    if job.status != QUEUED:
        return None
    names = PDF_QUEUES[: PDF_QUEUES.index(job.priority) + 1]
    with rt.redis.pipeline(transaction=False) as pipe:
        for name in names[:-1]:
            pipe.llen(f"rq:queue:{name}")
        pipe.lpos(f"rq:queue:{job.priority}", job.job_id, maxlen=MAX_SCAN)
        *ahead, own = pipe.execute()
    if own is None:
        return None
    return sum(ahead) + int(own)


def estimate(rt: Runtime, job: JobRecord) -> tuple[int | None, datetime | None]:
    """(position_in_queue, estimated_completion) of a job; (None, None) when Redis does not answer."""
    if job.status not in (QUEUED, SCHEDULED, PROCESSING):
        return None, None
    try:
        average = average_seconds(rt)
        if job.status == PROCESSING:
            started = job.started_at or utcnow()
            return None, max(utcnow(), started + timedelta(seconds=average))
        if job.status == SCHEDULED:
            return None, (job.run_at or utcnow()) + timedelta(seconds=average)
        position = queue_position(rt, job)
        workers = max(live_workers(rt), 1)
        ahead = position if position is not None else 0
        return position, utcnow() + timedelta(seconds=average * (ahead // workers + 1))
    except RedisError as exc:
        log.debug("job=%s event=eta_unavailable reason=%r", job.job_id, str(exc))
        return None, None
