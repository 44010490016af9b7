"""Accepting many jobs at once: every new row in one SQL transaction, every RQ job in one Redis pipeline.

Each item keeps the rules of a single submit (jobs/submit.py): its Idempotency-Key replays its earlier job,
the same code + productId while an earlier job is active returns that job, runAt jobs wait in SQL, and the
queue's maximum size counts every new queued item (the whole batch is refused when they do not fit).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jobs import eta
from jobs.eta import QueueSnapshot
from jobs.queues import GENERATE_PDF, PDF_QUEUES, rq_queue_key, rq_workers_key
from jobs.runtime import Runtime
from jobs.submit import (
    IdempotencyKeyReusedError,
    JobRequest,
    QueueFullError,
    new_job_row,
    queued_in_sql,
    rq_options,
)
from store import batch as batch_store
from store.jobs import active_key_for
from store.models import QUEUED, JobRecord

log = logging.getLogger(__name__)

ATTEMPTS = 3  # plans made again when a concurrent submit took one of the batch's keys between plan and insert
# Sum the queue lengths; when the batch's queued jobs fit under the limit, take a run of tickets per priority.
# KEYS: the queues, then the ticket key of each priority in the batch; ARGV: limit, queue count, counts.
_ADMIT_MANY = """
local queues = tonumber(ARGV[2])
local queued = 0
for i = 1, queues do queued = queued + redis.call('LLEN', KEYS[i]) end
local adding = 0
for i = 3, #ARGV do adding = adding + tonumber(ARGV[i]) end
if queued + adding > tonumber(ARGV[1]) then return {queued} end
local last = {queued}
for i = queues + 1, #KEYS do last[#last + 1] = redis.call('INCRBY', KEYS[i], ARGV[i - queues + 2]) end
return last
"""


class BatchQueueFullError(QueueFullError):
    """The batch's queued jobs do not fit under MAX_QUEUE_SIZE."""

    def __init__(self, queued: int, limit: int, retry_after: int, adding: int):
        self.adding = adding
        super().__init__(queued, limit, retry_after)


@dataclass(frozen=True)
class BatchEntry:
    """One item's job (a NewJob when this batch made it, else the earlier JobRecord), whether this batch made
    it, and its queue position and estimated completion."""

    job: Any
    created: bool
    position: int | None
    eta: datetime | None


@dataclass(frozen=True)
class NewJob:
    """What the answer of a new job needs of its row (a JobRecord costs ~20 times as much to build)."""

    job_id: str
    status: str
    priority: str
    run_at: datetime | None
    started_at: datetime | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> NewJob:
        """The answer's view of a new row."""
        return cls(row["job_id"], row["status"], row["priority"], row["run_at"])


Outcome = BatchEntry | IdempotencyKeyReusedError
# Per item while planning: an earlier job, the index of the new row it gets, or its error.
Planned = JobRecord | int | IdempotencyKeyReusedError


def submit_batch(rt: Runtime, client_name: str, requests: Sequence[JobRequest]) -> list[Outcome]:
    """Record the new jobs of `requests` in one committed transaction, then enqueue them in one pipeline;
    the outcome of each request, in order. Raises BatchQueueFullError (nothing recorded) when the
    batch's queued jobs do not fit."""
    rows = [new_job_row(client_name, request) for request in requests]
    for row in rows:
        row["active_key"] = active_key_for(client_name, row["code"], row["product_id"])
    with rt.session() as session:
        planned, first_tickets = _record(rt, session, client_name, requests, rows)
    new = [rows[index] for index, item in enumerate(planned) if item == index]
    queued = [row for row in new if row["status"] == QUEUED]
    tickets = assign_tickets(queued, first_tickets)
    snapshots = enqueue_rows(rt, queued, tickets)
    log.info("event=batch_accepted client=%s items=%s new=%s queued=%s enqueued=%s", client_name, len(rows),
             len(new), len(queued), snapshots is not None)
    return outcomes(rt, planned, rows, snapshots, tickets)


def _record(rt: Runtime, session: Session, client_name: str, requests: Sequence[JobRequest],
            rows: list[dict[str, Any]]) -> tuple[list[Planned], dict[str, int] | None]:
    """Plan, admit and insert; planned again (new tickets) when a concurrent submit won one of our keys."""
    for attempt in range(1, ATTEMPTS + 1):
        planned = plan(session, client_name, requests, rows)
        new = [rows[index] for index, item in enumerate(planned) if item == index]
        first_tickets = admit_many(rt, session, Counter(row["priority"] for row in new if row["status"] == QUEUED))
        try:
            batch_store.insert_jobs(session, new)
            session.commit()
            return planned, first_tickets
        except IntegrityError:
            session.rollback()
            if attempt == ATTEMPTS:
                raise
            log.info("event=batch_replanned client=%s attempt=%s", client_name, attempt)
    raise AssertionError("unreachable")


def plan(session: Session, client_name: str, requests: Sequence[JobRequest], rows: list[dict[str, Any]]
         ) -> list[Planned]:
    """What each item gets, as a single submit would decide it: a replay of its Idempotency-Key, the active
    job with its code + productId (earlier items of the batch count), or a new row of its own."""
    keys = [request.idempotency_key for request in requests if request.idempotency_key]
    by_key = batch_store.jobs_by_idempotency_key(session, client_name, keys) if keys else {}
    by_active = batch_store.jobs_by_active_key(session, [row["active_key"] for row in rows])
    new_by_key: dict[str, int] = {}
    new_by_active: dict[str, int] = {}
    planned: list[Planned] = []
    for index, (request, row) in enumerate(zip(requests, rows, strict=True)):
        key, active = request.idempotency_key, row["active_key"]
        earlier: JobRecord | int | None = (by_key.get(key) or new_by_key.get(key)) if key else None
        if earlier is not None:
            planned.append(_replay(earlier, row, rows))
            continue
        earlier = by_active.get(active, new_by_active.get(active))
        if earlier is not None:
            planned.append(earlier)
            continue
        planned.append(index)
        new_by_active[active] = index
        if key:
            new_by_key[key] = index
    return planned


def _replay(earlier: JobRecord | int, row: dict[str, Any], rows: list[dict[str, Any]]) -> Planned:
    """The earlier job of an Idempotency-Key, unless this item asks for something else with it."""
    fingerprint = rows[earlier]["request_fingerprint"] if isinstance(earlier, int) else earlier.request_fingerprint
    if fingerprint == row["request_fingerprint"]:
        return earlier
    return IdempotencyKeyReusedError(JobRecord(**rows[earlier]) if isinstance(earlier, int) else earlier)


def admit_many(rt: Runtime, session: Session, counts: Counter[str]) -> dict[str, int] | None:
    """The first queue ticket of each priority's new queued jobs (None when Redis does not answer and SQL
    counted the queue); BatchQueueFullError when they do not fit under MAX_QUEUE_SIZE."""
    adding = sum(counts.values())
    if not adding:
        return {}
    limit, priorities = rt.settings.max_queue_size, sorted(counts)
    keys = [rq_queue_key(name) for name in PDF_QUEUES] + [eta.TICKET_KEY.format(name) for name in priorities]
    try:
        queued, *last = rt.redis.eval(_ADMIT_MANY, len(keys), *keys, limit, len(PDF_QUEUES),
                                      *(counts[name] for name in priorities))
        firsts = {name: int(end) - counts[name] + 1 for name, end in zip(priorities, last, strict=False)}
    except RedisError:
        queued, firsts = queued_in_sql(session), None
    if queued + adding > limit:  # (the script took no tickets)
        retry_after = max(5, min(300, int(queued) // max(rt.settings.workers, 1)))
        raise BatchQueueFullError(int(queued), limit, retry_after, adding)
    return firsts


def assign_tickets(rows: list[dict[str, Any]], firsts: dict[str, int] | None) -> dict[str, int]:
    """Each queued row's ticket by job id: consecutive per priority from `firsts` (empty when none were taken)."""
    if firsts is None:
        return {}
    following = dict(firsts)
    tickets = {}
    for row in rows:
        tickets[row["job_id"]] = following[row["priority"]]
        following[row["priority"]] += 1
    return tickets


def enqueue_rows(rt: Runtime, rows: list[dict[str, Any]], tickets: dict[str, int]
                 ) -> dict[str, QueueSnapshot] | None:
    """Hand new queued jobs to RQ in one pipeline (one `enqueue_many` per priority) and read each priority's
    queue in it; the snapshots by priority, or None (logged) when Redis is unavailable."""
    if not rows:
        return {}
    try:
        if not tickets:  # admission counted in SQL: Redis may be back, take them now
            tickets.update(assign_tickets(rows, _take_tickets(rt, Counter(row["priority"] for row in rows))))
        options = rq_options(rt.settings, JobRecord(product_id="", code=""))
        with rt.redis.pipeline() as pipe:
            for priority in PDF_QUEUES:
                datas = [_prepare(options, row, tickets[row["job_id"]]) for row in rows if row["priority"] == priority]
                if datas:
                    Queue(priority, connection=rt.redis).enqueue_many(datas, pipeline=pipe)
            _read_queues(pipe)
            return _snapshots(pipe.execute())
    except RedisError as exc:
        log.warning("event=enqueue_deferred jobs=%s first_job=%s reason=%r", len(rows), rows[0]["job_id"], str(exc))
        return None


def _take_tickets(rt: Runtime, counts: Counter[str]) -> dict[str, int]:
    return {name: int(rt.redis.incrby(eta.TICKET_KEY.format(name), count)) - count + 1
            for name, count in counts.items()}


def _prepare(options: dict[str, Any], row: dict[str, Any], ticket: int) -> Any:
    """RQ's enqueue data of one row, with the options and meta of a single submit (`options`: rq_options of
    any job, the description made per row)."""
    return Queue.prepare_data(GENERATE_PDF, args=(row["job_id"],), job_id=row["job_id"], meta={"queue_ticket": ticket},
                              **(options | {"description": f"{row['product_id']} {row['code']}"}))


def _read_queues(pipe: Any) -> None:
    """Add the reads of every priority's snapshot: queue lengths, dequeued marks, the mean time, workers."""
    for name in PDF_QUEUES:
        pipe.llen(rq_queue_key(name))
    for name in PDF_QUEUES:
        pipe.get(eta.DEQUEUED_KEY.format(name))
    pipe.get(eta.AVERAGE_KEY)
    pipe.scard(rq_workers_key(PDF_QUEUES[0]))


def _snapshots(results: list[Any]) -> dict[str, QueueSnapshot]:
    """Each priority's QueueSnapshot of a job just enqueued, from the tail `_read_queues` added (each job's
    own ticket goes into `meta`)."""
    count = len(PDF_QUEUES)
    lengths, marks, (average, workers) = results[-(2 * count + 2):-(count + 2)], results[-(count + 2):-2], \
        results[-2:]
    return {
        name: QueueSnapshot(higher=sum(lengths[:number]), own_length=lengths[number], dequeued=int(marks[number] or 0),
                            average_seconds=int(average) / 1000 if average else eta.DEFAULT_SECONDS,
                            workers=int(workers), rq_status="queued", meta={}, retry_at=None)
        for number, name in enumerate(PDF_QUEUES)
    }


def outcomes(rt: Runtime, planned: list[Planned], rows: list[dict[str, Any]],
             snapshots: dict[str, QueueSnapshot] | None, tickets: dict[str, int]) -> list[Outcome]:
    """Each item's outcome with its position and estimate: new jobs from the enqueue's own read, earlier
    jobs from one more pipelined read (none when Redis failed just now)."""
    jobs = {index: NewJob.of(rows[index]) for index, item in enumerate(planned) if item == index}
    earlier = [item for item in planned if isinstance(item, JobRecord)]
    read = earlier_snapshots(rt, earlier) if earlier and snapshots is not None else {}
    result: list[Outcome] = []
    for index, item in enumerate(planned):
        if isinstance(item, IdempotencyKeyReusedError):
            result.append(item)
            continue
        job = jobs[item] if isinstance(item, int) else item
        created = item == index
        snap = (snapshots or {}).get(job.priority) if isinstance(item, int) else read.get(job.job_id)
        if snap is not None and job.job_id in tickets:
            snap = replace(snap, meta={"queue_ticket": tickets[job.job_id]})
        position, when = eta.estimate(rt, job, snap) if snap is not None else (None, None)
        result.append(BatchEntry(job, created, position, when))
    return result


def earlier_snapshots(rt: Runtime, jobs: list[JobRecord]) -> dict[str, QueueSnapshot]:
    """The QueueSnapshot of each earlier job, read in one pipelined round trip ({} when Redis fails)."""
    try:
        with rt.redis.pipeline(transaction=False) as pipe:
            ends = []
            for job in jobs:
                eta.read_snapshot(pipe, job.job_id, job.priority)
                ends.append(len(pipe))
            results = pipe.execute()
    except RedisError as exc:
        log.debug("event=eta_unavailable jobs=%s reason=%r", len(jobs), str(exc))
        return {}
    return {job.job_id: eta.snapshot_from(results[:end], job.priority) for job, end in zip(jobs, ends, strict=True)}
