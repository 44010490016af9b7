"""Filling the queue fast: SQL rows in bulk, then the same RQ jobs the submit path makes, pipelined."""

from __future__ import annotations

from typing import Any

from rq import Queue
from sqlalchemy import insert

from jobs.eta import TICKET_KEY
from jobs.queues import GENERATE_PDF
from jobs.runtime import Runtime
from jobs.submit import JobRequest, new_job_row, rq_options
from store.jobs import active_key_for
from store.models import JobRecord


def fill_queue(rt: Runtime, count: int, *, client_name: str, body: dict[str, Any], tag: str,
               batch: int = 5000) -> int:
    """Add `count` queued jobs (SQL rows committed first, then RQ jobs); returns how many were added."""
    added = 0
    while added < count:
        size = min(batch, count - added)
        rows = [_row(client_name, body, f"{tag}-{added + n}") for n in range(size)]
        with rt.session() as session:
            session.execute(insert(JobRecord), rows)
            session.commit()
        _enqueue(rt, rows)
        added += size
    return added


def _row(client_name: str, body: dict[str, Any], code: str) -> dict[str, Any]:
    """A new job's row as the submit writes it, with the active key create_job would add."""
    request = JobRequest(code=code, product_id=body["productId"], callback=body.get("callback"),
                         data=body.get("data"))
    return new_job_row(client_name, request) | {"active_key": active_key_for(client_name, code, request.product_id)}


def _enqueue(rt: Runtime, rows: list[dict[str, Any]]) -> None:
    priority = rows[0]["priority"]
    queue = Queue(priority, connection=rt.redis)
    # Queue tickets as enqueue_job takes them (jobs.eta), one INCRBY for the batch.
    first = int(rt.redis.incrby(TICKET_KEY.format(priority), len(rows))) - len(rows) + 1
    datas = [
        Queue.prepare_data(
            GENERATE_PDF, args=(row["job_id"],), job_id=row["job_id"], meta={"queue_ticket": first + number},
            **rq_options(rt.settings, JobRecord(product_id=row["product_id"], code=row["code"])),
        )
        for number, row in enumerate(rows)
    ]
    with rt.redis.pipeline() as pipe:
        queue.enqueue_many(datas, pipeline=pipe)
        pipe.execute()
