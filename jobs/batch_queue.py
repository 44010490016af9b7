"""The Redis side of a batch: admission with a run of queue tickets, the one `enqueue_many` pipeline, and the
queue snapshots its answers' positions and estimates come from."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy.orm import Session

from jobs import eta
from jobs.eta import QueueSnapshot
from jobs.queues import GENERATE_PDF, PDF_QUEUES, rq_queue_key, rq_workers_key
from jobs.runtime import Runtime
from jobs.submit import QueueFullError, queued_in_sql, rq_options
from store.models import JobRecord

log = logging.getLogger(__name__)

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


def admit_many(rt: Runtime, session: Session, counts: Counter[str], *, scheduled: int = 0,
               new_scheduled: int = 0) -> dict[str, int] | None:
    """The first queue ticket of each priority's new queued jobs (None when Redis does not answer and SQL
    counted the queue); BatchQueueFullError when they do not fit under MAX_QUEUE_SIZE.

    Args:
        scheduled: jobs waiting for their runAt (every client's, in SQL) and `new_scheduled` this batch's
            new ones: they count toward MAX_QUEUE_SIZE too.
    """
    adding = sum(counts.values())
    if not adding and not new_scheduled:
        return {}
    scheduled += new_scheduled
    limit, priorities = rt.settings.max_queue_size, sorted(counts)
    keys = [rq_queue_key(name) for name in PDF_QUEUES] + [eta.TICKET_KEY.format(name) for name in priorities]
    try:
        queued, *last = rt.redis.eval(_ADMIT_MANY, len(keys), *keys, limit - scheduled, len(PDF_QUEUES),
                                      *(counts[name] for name in priorities))
        firsts = {name: int(end) - counts[name] + 1 for name, end in zip(priorities, last, strict=False)}
        queued = int(queued) + scheduled
    except RedisError:
        queued, firsts = queued_in_sql(session) + new_scheduled, None  # SQL counts the earlier scheduled ones
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
