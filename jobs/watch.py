"""Watching a job: Server-Sent Events of its progress, and waiting for its end (sync endpoint).

Both poll the job's SQL row (a primary-key read) every JOB_WATCH_INTERVAL seconds: the row is the
record of truth; a running job's steps come from its RQ meta (jobs.progress). Under gunicorn's
gevent workers the sleeps yield, so a waiting request or an open stream costs a greenlet, not a process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError

from callbacks.payloads import iso
from jobs.progress import live_progress
from jobs.runtime import Runtime
from store import jobs as job_store
from store.models import CANCELLED, COMPLETED, FAILED, PROCESSING, QUEUED, SCHEDULED, JobRecord

HEARTBEAT_SECONDS = 15.0
RECONNECT_MS = 2000
_QUEUED_MESSAGES = {
    QUEUED: ("job_queued", "PDF generation job queued"),
    SCHEDULED: ("job_scheduled", "PDF generation job scheduled"),
}


@dataclass(frozen=True)
class JobEvent:
    """One SSE event: its name (progress, complete, error) and its data."""

    name: str
    data: dict[str, Any]

    def encode(self, event_id: int) -> str:
        """The event in text/event-stream format."""
        return f"id: {event_id}\nevent: {self.name}\ndata: {json.dumps(self.data, ensure_ascii=False)}\n\n"


def event_for(job: JobRecord) -> JobEvent:
    """The event that describes the job's current state (the seed's fields: status, phase, progress, message)."""
    base = {"job_id": job.job_id, "status": job.status, "progress": job.progress, "retry_count": job.retry_count}
    if job.status == COMPLETED:
        return JobEvent("complete", base | {"phase": "complete", "progress": 100,
                                            "message": "PDF generated and stored",
                                            "download_url": f"/api/jobs/{job.job_id}/download",
                                            "google_drive_link": job.google_drive_link,
                                            "completed_at": iso(job.completed_at)})
    if job.status in (FAILED, CANCELLED):
        phase = "job_failed" if job.status == FAILED else "job_cancelled"
        return JobEvent("error", base | {"phase": phase, "message": job.error_message or job.status,
                                         "error": job.error_message})
    if job.status == PROCESSING:
        phase_text = job.phase or "started"
        phase = "job_started" if phase_text == "started" else _slug(phase_text)
        return JobEvent("progress", base | {"phase": phase, "message": phase_text})
    phase, message = _QUEUED_MESSAGES.get(job.status, (job.status, job.phase or job.status))
    if job.status == QUEUED and job.phase and job.phase.startswith("retrying"):
        phase, message = "job_retrying", f"attempt failed ({job.error_message}); {job.phase}"
    if job.status == SCHEDULED and job.run_at is not None:
        message = f"{message} for {iso(job.run_at)}"
    return JobEvent("progress", base | {"phase": phase, "message": message})


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text.lower()).strip("_")[:60] or "processing"


def job_events(
    rt: Runtime,
    job_id: str,
    *,
    interval: float,
    max_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[str]:
    """The SSE stream of a job: an event per change of state, phase or progress, closed after the end.

    Yields heartbeat comments every HEARTBEAT_SECONDS (proxies keep the connection; a gone client is
    noticed) and ends after `max_seconds`: EventSource clients then reconnect by themselves. While the
    database cannot be reached the stream stays open and asks again each interval (a reconnecting
    EventSource would meet a 503, on which browsers give up for good).
    """
    yield f"retry: {RECONNECT_MS}\n\n"
    started = last_sent = clock()
    last: JobEvent | None = None
    event_id = 0
    while True:
        try:
            event = _current_event(rt, job_id)
        except (OperationalError, InterfaceError):  # the database is away: keep the stream open, ask again
            event = last
        else:
            if event is None:
                return
        if event is not None and event != last:
            event_id += 1
            last, last_sent = event, clock()
            yield event.encode(event_id)
        if (event is not None and event.name != "progress") or clock() - started >= max_seconds:
            return
        if clock() - last_sent >= HEARTBEAT_SECONDS:
            last_sent = clock()
            yield ": keep-alive\n\n"
        sleep(interval)


def _current_event(rt: Runtime, job_id: str) -> JobEvent | None:
    """The event of the job's state now (None: no such job)."""
    with rt.session() as session:
        job = job_store.get_job(session, job_id)
    if job is None:
        return None
    live = live_progress(rt, job)  # a running job's steps are in its RQ meta; SQL has them now and then
    if live:
        job.progress, job.phase = live["progress"], live["phase"]
    return event_for(job)


def wait_until_final(
    rt: Runtime,
    job_id: str,
    *,
    timeout: float,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> JobRecord | None:
    """The job once it has ended, or its latest state when `timeout` passes first (None if unknown)."""
    deadline = clock() + timeout
    while True:
        with rt.session() as session:
            job = job_store.get_job(session, job_id)
        if job is None or job.is_final:
            return job
        remaining = deadline - clock()
        if remaining <= 0:
            return job
        sleep(min(interval, remaining))
