"""Ending a job: its final state, its webhook outbox row and its MongoDB record, in one transaction."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from redis.client import Pipeline
from redis.exceptions import RedisError

from callbacks import payloads
from jobs import eta
from jobs import webhook_relay as relay
from jobs.runtime import Runtime
from store import jobs as job_store
from store import outbox
from store.models import COMPLETED, DELIVERY_PENDING, JobRecord, utcnow

log = logging.getLogger(__name__)

MONGO_PENDING = "pending"
MONGO_DONE = "done"
FIRST_ATTEMPT = 1  # claimed in the row `end_job` writes

AfterCommit = Callable[[Pipeline], None]  # queues a job's end-of-job Redis commands on a pipeline


def download_url(rt: Runtime, job_id: str) -> str:
    """The absolute URL where the caller downloads the PDF."""
    base = rt.settings.public_base_url or f"http://127.0.0.1:{rt.settings.port}"
    return f"{base.rstrip('/')}/api/jobs/{job_id}/download"


def complete_job(rt: Runtime, job_id: str, *, also: AfterCommit | None = None, **result: Any) -> JobRecord | None:
    """Mark the job completed with its stored-file fields; None if it had already ended.

    Its processing time (the measured average behind estimated_completion) goes to Redis in the
    hand-over's round trip, with `also`'s commands.
    """
    processing_ms = result.get("processing_ms")

    def after_commit(pipe: Pipeline) -> None:
        if processing_ms is not None:
            eta.record_duration(pipe, processing_ms)
        if also is not None:
            also(pipe)

    return end_job(rt, job_id, COMPLETED, error=None, also=after_commit, **result)


def end_job(rt: Runtime, job_id: str, status: str, *, error: str | None, also: AfterCommit | None = None,
            **fields: Any) -> JobRecord | None:
    """Set a final state and add the webhook and Mongo outbox entries atomically; None if already final.

    After the commit, one Redis round trip hands the webhook over and runs `also`'s commands (the
    job's other end-of-job writes), so the worker waits on Redis once per job end.
    """
    if rt.settings.mongo_uri:
        fields["mongo_status"] = MONGO_PENDING
    with rt.engine.begin() as connection:
        job = job_store.finish_job(connection, job_id, status, error=error, **fields)
        delivery = _outbox_row(rt, job) if job is not None else None
        delivery_id = outbox.insert_delivery(connection, delivery) if delivery is not None else None
    if job is None:
        return None
    if delivery_id is not None:
        # handed over by this worker right after the commit: low latency; the relay is the backstop
        relay.hand_over_claimed(rt, delivery_id, FIRST_ATTEMPT, delivery["handed_at"], also=also)
    elif also is not None:
        _run_after_commit(rt, job_id, also)
    log.info("job=%s event=%s ms=%s bytes=%s backend=%s error=%r",
             job_id, status, job.processing_ms, job.file_size, job.storage_backend, error)
    if job.mongo_status == MONGO_PENDING:
        record_in_mongo(rt, job)
    return job


def _run_after_commit(rt: Runtime, job_id: str, also: AfterCommit) -> None:
    """The end-of-job Redis commands of a job without a webhook, in one round trip (best effort)."""
    try:
        with rt.redis.pipeline(transaction=False) as pipe:
            also(pipe)
            pipe.execute(raise_on_error=False)
    except RedisError as exc:  # a lease left behind expires; a duration is only an estimate's sample
        log.debug("job=%s event=end_of_job_commands_failed reason=%r", job_id, str(exc))


def _outbox_row(rt: Runtime, job: JobRecord) -> dict[str, Any] | None:
    """The webhook outbox row of a job that just ended, or None without a URL.

    The row is written with its first attempt already claimed (handed, attempts 1, held for the
    lease), and the worker pushes that claim to the sender: the sender then reads the row instead of
    claiming it in a write transaction of its own. A worker killed before the push leaves a claim
    that lapses after the lease, as a killed sender's does; the relay hands the delivery over again.
    """
    if job.status == COMPLETED:
        url = job.callback_url
        body = payloads.success_body(
            job_id=job.job_id, code=job.code, product_id=job.product_id,
            google_drive_link=job.google_drive_link, download_url=download_url(rt, job.job_id),
            completed_at=job.completed_at,
        )
        event = payloads.SUCCESS
    else:
        url = payloads.failure_url(job.callback_url, job.failure_callback_url)
        body = payloads.failure_body(
            job_id=job.job_id, status=job.status, error=job.error_message, failed_at=job.completed_at,
            retry_count=job.retry_count, code=job.code, product_id=job.product_id,
        )
        event = payloads.FAILURE
    if not url:
        return None
    now = utcnow()
    return {
        "job_id": job.job_id,
        "webhook_id": "msg_" + secrets.token_hex(16),
        "event": event,
        "url": url,
        "body": payloads.encode(body),
        "status": DELIVERY_PENDING,
        "attempts": FIRST_ATTEMPT,
        "next_attempt_at": now + timedelta(seconds=relay.lease_seconds(rt.settings)),
        "handed_at": now,
    }


def record_in_mongo(rt: Runtime, job: JobRecord) -> bool:
    """Write the outcome to MongoDB; on failure it stays pending for the relay to retry."""
    sink = rt.mongo
    if sink is None:
        return False
    try:
        sink.record_outcome(
            job.code, job.product_id, status=job.status, job_id=job.job_id,
            google_drive_link=job.google_drive_link,
            completed_at=job.completed_at if job.status == COMPLETED else None,
            failed_at=None if job.status == COMPLETED else job.completed_at,
            error_message=job.error_message,
        )
    except Exception as exc:  # noqa: BLE001 - any Mongo trouble leaves the record pending
        log.warning("job=%s event=mongo_record_deferred reason=%r", job.job_id, str(exc))
        return False
    with rt.session() as session:
        stored = job_store.get_job(session, job.job_id)
        if stored is not None:
            stored.mongo_status = MONGO_DONE
            session.commit()
    return True
