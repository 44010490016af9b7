"""Queue position and estimated completion, from measured processing times and live workers.

A status call must stay cheap with 100,000 jobs queued, so nothing here scans a queue. Instead:
- at enqueue every job takes a ticket, a per-priority sequence number (INCR), kept in its RQ meta;
- when a worker starts a job it raises the per-priority "dequeued" mark to that job's ticket;
- jobs ahead of a queued job = the length of every higher-priority queue
  + (its ticket - the dequeued mark - 1), clamped to the length of its own queue;
- a job put at the front (the reconciler's re-queue) takes the mark as its ticket and lowers the mark.
One pipelined round trip of O(1) commands answers a status call. Jobs removed from the middle of a
queue (cancelled) make the estimate high by one each until a later job starts; the clamp bounds it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq.job import Job
from rq.serializers import resolve_serializer

from jobs.queues import PDF_QUEUES, rq_queue_key, rq_scheduled_key, rq_workers_key
from jobs.runtime import Runtime
from store.models import PROCESSING, QUEUED, SCHEDULED, JobRecord, utcnow

log = logging.getLogger(__name__)

DURATIONS_KEY = "pdfjobs:durations"
AVERAGE_KEY = "pdfjobs:duration_avg_ms"
TICKET_KEY = "pdfjobs:queue_ticket:{}"
DEQUEUED_KEY = "pdfjobs:queue_dequeued:{}"
DURATION_SAMPLES = 200
DEFAULT_SECONDS = 2.0
# Raise a key to a value, never lower it (workers start jobs slightly out of ticket order).
_RAISE_TO = "local c = tonumber(redis.call('GET', KEYS[1]) or '0') " \
            "if tonumber(ARGV[1]) > c then redis.call('SET', KEYS[1], ARGV[1]) end return 0"
# A job put at the front takes the current mark as its ticket and lowers the mark by one, so it is next
# and every other job moves back one place; starting it raises the mark back.
_FRONT_TICKET = "local c = tonumber(redis.call('GET', KEYS[1]) or '0') redis.call('SET', KEYS[1], c - 1) return c"
# Push a duration, keep the newest ARGV[2], store their mean: server-side, so no sample crosses the wire.
_RECORD_DURATION = """
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
local total, samples = 0, redis.call('LRANGE', KEYS[1], 0, -1)
for _, value in ipairs(samples) do total = total + tonumber(value) end
redis.call('SET', KEYS[2], math.floor(total / #samples))
return 0
"""
# Sum the queue lengths; under the limit (and when asked), take the next ticket of KEYS[1].
_ADMIT = """
local queued = 0
for i = 2, #KEYS do queued = queued + redis.call('LLEN', KEYS[i]) end
if queued >= tonumber(ARGV[1]) or ARGV[2] == '0' then return {queued, 0} end
return {queued, redis.call('INCR', KEYS[1])}
"""
_SERIALIZER = resolve_serializer(None)


def queue_ticket(redis: Redis, priority: str, *, at_front: bool = False) -> dict[str, Any]:
    """RQ meta for a job about to be enqueued: its ticket on its priority queue."""
    if at_front:
        return {"queue_ticket": int(redis.eval(_FRONT_TICKET, 1, DEQUEUED_KEY.format(priority)))}
    return {"queue_ticket": int(redis.incr(TICKET_KEY.format(priority)))}


def admit(redis: Redis, priority: str, limit: int, *, take_ticket: bool) -> tuple[int, int | None]:
    """(jobs queued, ticket): the queue lengths and, when they are under `limit`, a ticket, in one round trip.

    A ticket taken for a job that is then not enqueued (a duplicate) is a gap, like a cancelled job.
    """
    keys = [TICKET_KEY.format(priority), *(rq_queue_key(name) for name in PDF_QUEUES)]
    queued, ticket = redis.eval(_ADMIT, len(keys), *keys, limit, int(take_ticket))
    return int(queued), int(ticket) or None


def mark_dequeued(redis: Redis | Pipeline, origin: str, meta: dict[str, Any]) -> None:
    """A worker started this job: raise its queue's dequeued mark to the job's ticket (on a pipeline:
    queued with its other commands)."""
    ticket = meta.get("queue_ticket")
    if ticket is None:
        return
    try:
        redis.eval(_RAISE_TO, 1, DEQUEUED_KEY.format(origin), int(ticket))
    except RedisError as exc:
        log.debug("event=dequeued_mark_failed queue=%s reason=%r", origin, str(exc))


def record_duration(redis: Redis | Pipeline, milliseconds: int) -> None:
    """Remember a job's processing time and the mean of the newest DURATION_SAMPLES (one round trip, or
    queued on a pipeline with the job's other end-of-job commands)."""
    try:
        redis.eval(_RECORD_DURATION, 2, DURATIONS_KEY, AVERAGE_KEY, int(milliseconds), DURATION_SAMPLES)
    except RedisError as exc:
        log.debug("event=duration_not_recorded reason=%r", str(exc))


@dataclass(frozen=True)
class QueueSnapshot:
    """What one pipelined round trip tells about a job's queue."""

    higher: int
    own_length: int
    dequeued: int
    average_seconds: float
    workers: int
    rq_status: str | None
    meta: dict[str, Any]
    retry_at: float | None


def snapshot(redis: Redis, job: JobRecord) -> QueueSnapshot:
    """Queue lengths, marks, average, worker count and the RQ job's state, in one round trip."""
    with redis.pipeline(transaction=False) as pipe:
        read_snapshot(pipe, job.job_id, job.priority)
        return snapshot_from(pipe.execute(), job.priority)


def _queues_up_to(priority: str) -> tuple[str, ...]:
    return PDF_QUEUES[: PDF_QUEUES.index(priority) + 1] if priority in PDF_QUEUES else (priority,)


_FIXED_READS = 5  # what read_snapshot adds after the queue lengths: mark, average, workers, job hash, retry time


def read_snapshot(pipe: Pipeline, job_id: str, priority: str) -> None:
    """Add the reads of a QueueSnapshot to `pipe` (last in it: `snapshot_from` takes the tail)."""
    for name in _queues_up_to(priority):
        pipe.llen(rq_queue_key(name))
    pipe.get(DEQUEUED_KEY.format(priority))
    pipe.get(AVERAGE_KEY)
    pipe.scard(rq_workers_key(PDF_QUEUES[0]))
    pipe.hmget(Job.key_for(job_id), "status", "meta")
    pipe.zscore(rq_scheduled_key(priority), job_id)


def snapshot_from(results: list[Any], priority: str) -> QueueSnapshot:
    """The QueueSnapshot of a pipeline's results whose tail are the reads of `read_snapshot`."""
    reads = results[-(len(_queues_up_to(priority)) + _FIXED_READS):]
    *lengths, dequeued, average, workers, (status, meta), retry_at = reads
    return QueueSnapshot(
        higher=sum(lengths[:-1]),
        own_length=lengths[-1],
        dequeued=int(dequeued or 0),
        average_seconds=int(average) / 1000 if average else DEFAULT_SECONDS,
        workers=int(workers),
        rq_status=status.decode() if status else None,
        meta=_load_meta(meta),
        retry_at=retry_at,
    )


def _load_meta(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        meta = _SERIALIZER.loads(raw)
    except Exception:  # noqa: BLE001 - unreadable meta only costs the position
        return {}
    return meta if isinstance(meta, dict) else {}


def position_from(snap: QueueSnapshot) -> int | None:
    """Jobs ahead of the job, counting higher-priority queues; None when it is not waiting in a queue."""
    if snap.rq_status != "queued" or snap.own_length == 0:
        return None
    last = snap.own_length - 1
    ticket = snap.meta.get("queue_ticket")
    # No ticket, or one already passed (RQ re-queued a retry at the tail): assume the tail.
    ahead = last if ticket is None or ticket <= snap.dequeued else min(ticket - snap.dequeued - 1, last)
    return snap.higher + ahead


def estimate(rt: Runtime, job: JobRecord, snap: QueueSnapshot | None = None) -> tuple[int | None, datetime | None]:
    """(position_in_queue, estimated_completion) of a job; None parts when unknown or Redis is down.

    `snap` is a snapshot read already (the submit reads one in its enqueue round trip). With no live
    worker the completion is unknown (None): nothing will run the job.
    """
    if job.status not in (QUEUED, SCHEDULED, PROCESSING):
        return None, None
    if snap is None:
        try:
            snap = snapshot(rt.redis, job)
        except RedisError as exc:
            log.debug("job=%s event=eta_unavailable reason=%r", job.job_id, str(exc))
            return None, None
    average = timedelta(seconds=snap.average_seconds)
    now = utcnow()
    if job.status == PROCESSING:
        return None, max(now, (job.started_at or now) + average)
    if job.status == SCHEDULED:
        return None, (job.run_at or now) + average
    position = position_from(snap)
    if snap.workers == 0:
        return position, None
    if position is None:
        if snap.rq_status in ("started", "finished"):  # a worker took it after our SQL read: it is running
            return None, now + average
        if snap.retry_at is None:
            return None, None
        start = datetime.fromtimestamp(snap.retry_at, tz=now.tzinfo)
        return None, max(now, start) + average
    return position, now + average * (position // snap.workers + 1)
