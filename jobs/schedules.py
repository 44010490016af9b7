"""Recurring schedules: create and change them, and run the due ones (a task of the scheduler program).

Each run is a normal job with its own id and webhook, made from the schedule's submit body and marked
with the schedule and the tick it is for. Runs missed while no scheduler ran are never made up one by
one: the schedule's `missed` setting runs one job now (run_once) or none (skip).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobs.cron import CronError, cron_schedule
from jobs.runtime import Runtime
from jobs.submit import JobRequest, enqueue_job, new_job_row
from store import schedules as schedule_store
from store.clients import find_clients_by_name
from store.models import MISSED_RUN_ONCE, QUEUED, JobRecord, Schedule, utcnow

log = logging.getLogger(__name__)

DUE_BATCH = 100  # schedules one scheduler pass runs at most; the rest are next in the following pass
# Column of each field a client may set (the API's names are on the left).
COLUMNS = {"cron": "cron", "timezone": "timezone", "job": "job", "start": "start_at", "end": "end_at",
           "missed": "missed", "paused": "paused"}
TIMING = frozenset({"cron", "timezone", "start", "end", "paused"})  # the fields that move the next run


class ScheduleNeverRunsError(ValueError):
    """The schedule's end comes before its first run."""


def new_schedule_id() -> str:
    """A new, unguessable schedule id; ids sort by creation time (milliseconds first), which lists use."""
    return f"sch_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(8)}"


def job_body(request: JobRequest) -> dict[str, Any]:
    """A checked submit request as the body a schedule stores and shows (camelCase, as the API takes it)."""
    body = {"code": request.code, "productId": request.product_id, "priority": request.priority,
            "callback": request.callback, "failureCallback": request.failure_callback, "data": request.data}
    return {name: value for name, value in body.items() if value is not None}


def job_request(body: dict[str, Any]) -> JobRequest:
    """The submit request of one run, from a schedule's stored body."""
    return JobRequest(code=body["code"], product_id=body["productId"], priority=body.get("priority", "normal"),
                      callback=body.get("callback"), failure_callback=body.get("failureCallback"),
                      data=body.get("data"))


def next_run(schedule: Schedule, now: datetime) -> datetime | None:
    """When the schedule runs next counting from `now`: None while paused or once past its end."""
    if schedule.paused:
        return None
    cron = cron_schedule(schedule.cron, schedule.timezone)
    start = schedule.start_at
    tick = cron.first_from(start) if start is not None and start > now else cron.next_after(now)
    if schedule.end_at is not None and tick > schedule.end_at:
        return None
    return tick


def create_schedule(rt: Runtime, client_name: str, fields: dict[str, Any], now: datetime | None = None
                    ) -> Schedule:
    """Store a new schedule from checked API fields (COLUMNS' keys); ScheduleNeverRunsError when it
    would never run."""
    now = now or utcnow()
    schedule = Schedule(schedule_id=new_schedule_id(), client_name=client_name, missed=MISSED_RUN_ONCE,
                        paused=False, run_count=0, created_at=now, updated_at=now)
    for name, value in fields.items():
        setattr(schedule, COLUMNS[name], value)
    schedule.next_run_at = next_run(schedule, now)
    if schedule.next_run_at is None and not schedule.paused:
        raise ScheduleNeverRunsError("the schedule's end comes before its first run; give a later end")
    with rt.session() as session:
        schedule_store.create_schedule(session, _columns(schedule))
    log.info("schedule=%s event=created client=%s cron=%r timezone=%s next_run_at=%s", schedule.schedule_id,
             client_name, schedule.cron, schedule.timezone, schedule.next_run_at)
    return schedule


def _columns(schedule: Schedule) -> dict[str, Any]:
    return {column.key: getattr(schedule, column.key) for column in Schedule.__table__.columns}


def change_schedule(rt: Runtime, schedule_id: str, client_name: str, fields: dict[str, Any], *,
                    admin: bool = False, now: datetime | None = None) -> Schedule | None:
    """Apply checked API fields to the client's schedule; the next run is worked out again from now when a
    timing field changed (a resumed schedule does not make up the runs of its pause). None: no such schedule."""
    now = now or utcnow()
    with rt.session() as session:
        schedule = schedule_store.get_client_schedule(session, schedule_id, client_name, admin=admin)
        if schedule is None:
            return None
        changes = {COLUMNS[name]: value for name, value in fields.items()}
        if TIMING & fields.keys():
            for column, value in changes.items():
                setattr(schedule, column, value)
            changes["next_run_at"] = next_run(schedule, now)
        schedule_store.update_schedule(session, schedule, changes | {"updated_at": now})
    log.info("schedule=%s event=changed fields=%s paused=%s next_run_at=%s", schedule_id, ",".join(sorted(fields)),
             schedule.paused, schedule.next_run_at)
    return schedule


@dataclass(frozen=True)
class Tick:
    """What one pass does with a due schedule: the tick its run is for (None: no run) and the next run."""

    run_for: datetime | None
    next_run_at: datetime | None
    late: bool


def plan_tick(schedule: Schedule, now: datetime, missed_after: float) -> Tick:
    """The run of a due schedule: for its latest tick up to now (earlier ticks missed while no scheduler ran
    are never run one by one), unless that tick is late by more than `missed_after` seconds and the
    schedule skips missed runs."""
    due = schedule.next_run_at or now  # due_schedules only returns schedules with a next run
    cron = cron_schedule(schedule.cron, schedule.timezone)
    until = min(now, schedule.end_at) if schedule.end_at is not None else now
    latest = cron.latest_until(until, due)
    late = (now - latest).total_seconds() > missed_after
    following = cron.next_after(now)
    if schedule.end_at is not None and following > schedule.end_at:
        following = None
    return Tick(latest if not late or schedule.missed == MISSED_RUN_ONCE else None, following, late)


def run_row(schedule: Schedule, tick: datetime) -> dict[str, Any]:
    """The job row of the schedule's run for `tick`: a normal job, outside the one-active-job-per-code rule
    (each tick is a run of its own even while an earlier run is still queued)."""
    values = new_job_row(schedule.client_name, job_request(schedule.job))
    return values | {"schedule_id": schedule.schedule_id, "scheduled_for": tick, "active_key": None}


def run_due_schedules(rt: Runtime, now: datetime | None = None) -> int:
    """Make the runs of every due schedule (safe with several schedulers at once); how many jobs were made."""
    now = now or utcnow()
    with rt.session() as session:
        due = schedule_store.due_schedules(session, now, limit=DUE_BATCH)
    if not due:
        return 0
    clients = find_clients_by_name(rt.session, rt.settings.api_clients, {schedule.client_name for schedule in due})
    return sum(run_schedule(rt, schedule, now, client_exists=schedule.client_name in clients) is not None
               for schedule in due)


def run_schedule(rt: Runtime, schedule: Schedule, now: datetime, *, client_exists: bool = True) -> JobRecord | None:
    """Handle one due schedule: its run's job (committed with the schedule's next run, then enqueued), or
    None when it made none (missed and skipped, its client is gone, or another scheduler handled the tick)."""
    try:
        tick = plan_tick(schedule, now, rt.settings.schedule_missed_after)
    except CronError as exc:  # e.g. a time zone gone from a newer tz database: stop it, say why
        log.error("schedule=%s event=schedule_stopped reason=%r", schedule.schedule_id, str(exc))
        tick = Tick(None, None, late=False)
    if not client_exists and tick.run_for is not None:  # no one to sign its webhook for, nor to own the job
        log.warning("schedule=%s event=run_skipped reason=client_unknown client=%s", schedule.schedule_id,
                    schedule.client_name)
        tick = Tick(None, tick.next_run_at, tick.late)
    values = run_row(schedule, tick.run_for) if tick.run_for is not None else None
    with rt.session() as session:
        if not schedule_store.advance(session, schedule, tick.next_run_at, values):
            return None
    if values is None:
        log.info("schedule=%s event=missed_run_skipped due=%s next_run_at=%s", schedule.schedule_id,
                 schedule.next_run_at, tick.next_run_at)
        return None
    job = JobRecord(**values)
    if job.status == QUEUED:
        enqueue_job(rt, job)
    log.info("job=%s event=schedule_run schedule=%s tick=%s late=%s next_run_at=%s", job.job_id,
             schedule.schedule_id, tick.run_for, tick.late, tick.next_run_at)
    return job
