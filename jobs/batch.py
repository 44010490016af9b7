"""Accepting many jobs at once: every new row in one SQL transaction, every RQ job in one Redis pipeline.

Each item keeps the rules of a single submit (jobs/submit.py): its Idempotency-Key replays its earlier job,
the same code + productId while an earlier job is active returns that job, runAt jobs wait in SQL, and the
queue's maximum size counts every new queued and scheduled item, and so does the client's cap (the whole batch
is refused when they do not fit).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jobs import eta
from jobs.batch_queue import admit_many, assign_tickets, earlier_snapshots, enqueue_rows
from jobs.eta import QueueSnapshot
from jobs.runtime import Runtime
from jobs.submit import IdempotencyKeyReusedError, JobRequest, admit_client, new_job_row
from store import batch as batch_store
from store.jobs import active_key_for
from store.models import QUEUED, JobRecord

log = logging.getLogger(__name__)

ATTEMPTS = 3  # plans made again when a concurrent submit took one of the batch's keys between plan and insert


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


def submit_batch(rt: Runtime, client_name: str, requests: Sequence[JobRequest], *,
                 max_queued: int | None = None) -> list[Outcome]:
    """Record the new jobs of `requests` in one committed transaction, then enqueue them in one pipeline;
    the outcome of each request, in order. Raises batch_queue.BatchQueueFullError (nothing recorded) when the
    batch's queued and scheduled jobs do not fit in MAX_QUEUE_SIZE, submit.ClientQuotaError when they do not
    fit under the client's cap (`max_queued`, None: MAX_QUEUED_PER_CLIENT)."""
    rows = [new_job_row(client_name, request) for request in requests]
    for row in rows:
        row["active_key"] = active_key_for(client_name, row["code"], row["product_id"])
    cap = max_queued or rt.settings.max_queued_per_client
    with rt.session() as session:
        planned, first_tickets = _record(rt, session, client_name, requests, rows, cap)
    new = [rows[index] for index, item in enumerate(planned) if item == index]
    queued = [row for row in new if row["status"] == QUEUED]
    tickets = assign_tickets(queued, first_tickets)
    snapshots = enqueue_rows(rt, queued, tickets)
    # One INFO line per batch; a line per job (as a single submit writes) only at DEBUG: at INFO, 1,000 of
    # them cost ~14 ms of the ~230 ms of CPU a batch of 1,000 takes.
    if log.isEnabledFor(logging.DEBUG):
        for row in new:
            log.debug("job=%s event=accepted client=%s product=%s priority=%s status=%s batch=true", row["job_id"],
                      client_name, row["product_id"], row["priority"], row["status"])
    log.info("event=batch_accepted client=%s items=%s new=%s queued=%s enqueued=%s first_job=%s last_job=%s",
             client_name, len(rows), len(new), len(queued), snapshots is not None,
             new[0]["job_id"] if new else None, new[-1]["job_id"] if new else None)
    return outcomes(rt, planned, rows, snapshots, tickets)


def _record(rt: Runtime, session: Session, client_name: str, requests: Sequence[JobRequest],
            rows: list[dict[str, Any]], max_queued: int) -> tuple[list[Planned], dict[str, int] | None]:
    """Plan, admit and insert; planned again (new tickets) when a concurrent submit won one of our keys."""
    for attempt in range(1, ATTEMPTS + 1):
        planned = plan(session, client_name, requests, rows)
        new = [rows[index] for index, item in enumerate(planned) if item == index]
        counts = Counter(row["priority"] for row in new if row["status"] == QUEUED)
        scheduled = admit_client(rt, session, client_name, len(new), max_queued)
        first_tickets = admit_many(rt, session, counts, scheduled=scheduled,
                                   new_scheduled=len(new) - sum(counts.values()))
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
