"""The MongoDB outbox relay: writes the `pdf_generation` records that could not be written at once.

`outcome.end_job` marks a finished job `mongo_status="pending"` in the transaction that ends it and
tries the MongoDB write right after; when MongoDB is down the row stays pending. The scheduler runs
`relay_mongo_records` periodically until every pending record has landed, so a MongoDB outage
delays the record but never loses it. Writing the same record twice is harmless (`$set` of the same
subdocument, never over a newer job's record).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select

from jobs.outcome import MONGO_PENDING, record_in_mongo
from jobs.runtime import Runtime
from store.models import JobRecord, utcnow

log = logging.getLogger(__name__)

RELAY_INTERVAL = 10.0  # seconds between relay runs in the scheduler
BATCH_SIZE = 100
# The worker tries the write itself right after ending the job: leave it that long before relaying.
GRACE = timedelta(seconds=30)


def pending_records(
    rt: Runtime, *, now: datetime | None = None, grace: timedelta = GRACE, limit: int = BATCH_SIZE
) -> Sequence[JobRecord]:
    """Jobs whose MongoDB record is still pending, oldest first (index ix_job_mongo_status)."""
    cutoff = (now or utcnow()) - grace
    with rt.session() as session:
        return session.scalars(
            select(JobRecord)
            .where(JobRecord.mongo_status == MONGO_PENDING, JobRecord.completed_at <= cutoff)
            .order_by(JobRecord.completed_at)
            .limit(limit)
        ).all()


def relay_mongo_records(
    rt: Runtime, *, now: datetime | None = None, grace: timedelta = GRACE, batch_size: int = BATCH_SIZE
) -> int:
    """Write pending MongoDB records, one batch; returns how many landed.

    Stops at the first failure (MongoDB is down: the next run tries again), so an outage costs one
    server-selection timeout per run instead of one per pending record.
    """
    if rt.mongo is None:
        return 0
    landed = 0
    pending = pending_records(rt, now=now, grace=grace, limit=batch_size)
    for job in pending:
        if not record_in_mongo(rt, job):
            left = len(pending) - landed
            log.warning("job=%s event=mongo_relay_paused landed=%s left_in_batch=%s", job.job_id, landed, left)
            break
        landed += 1
        log.info("job=%s event=mongo_record_relayed status=%s", job.job_id, job.status)
    return landed
