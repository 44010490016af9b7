"""Queries and state changes of recurring schedules, and the one transaction that makes a run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models import JobRecord, Schedule, utcnow


def create_schedule(session: Session, values: dict[str, Any]) -> Schedule:
    """Insert and commit a new schedule."""
    schedule = Schedule(**values)
    session.add(schedule)
    session.commit()
    return schedule


def get_client_schedule(session: Session, schedule_id: str, client_name: str, *, admin: bool = False
                        ) -> Schedule | None:
    """The schedule if it belongs to the client (or the client is admin); None otherwise."""
    schedule = session.get(Schedule, schedule_id)
    if schedule is None or (schedule.client_name != client_name and not admin):
        return None
    return schedule


def list_schedules(session: Session, *, client_name: str | None, before: str | None = None, limit: int = 100
                   ) -> Sequence[Schedule]:
    """Schedules newest first (ids sort by creation); `before` is the last id of the previous page."""
    query = select(Schedule)
    if client_name is not None:
        query = query.where(Schedule.client_name == client_name)
    if before is not None:
        query = query.where(Schedule.schedule_id < before)
    return session.scalars(query.order_by(Schedule.schedule_id.desc()).limit(limit)).all()


def update_schedule(session: Session, schedule: Schedule, changes: dict[str, Any]) -> Schedule:
    """Apply column changes to a loaded schedule and commit."""
    for name, value in changes.items():
        setattr(schedule, name, value)
    session.commit()
    return schedule


def delete_schedule(session: Session, schedule_id: str) -> bool:
    """Delete a schedule (the jobs it made stay); False when it did not exist."""
    result = session.execute(delete(Schedule).where(Schedule.schedule_id == schedule_id))
    session.commit()
    return result.rowcount == 1


def due_schedules(session: Session, now: datetime, *, limit: int = 100) -> Sequence[Schedule]:
    """Schedules whose next run is at or before `now`, most overdue first (paused and ended ones have none)."""
    query = select(Schedule).where(Schedule.next_run_at <= now).order_by(Schedule.next_run_at).limit(limit)
    return session.scalars(query).all()


def advance(session: Session, schedule: Schedule, next_run_at: datetime | None, job: dict[str, Any] | None
            ) -> bool:
    """Move the schedule from the next run it was read with to `next_run_at` and insert its run's job row
    (`job`, column values; None: no run), in one transaction; False when another scheduler did it first.

    The conditional UPDATE decides who handles this tick (it takes the row lock on PostgreSQL; SQLite
    serialises writers), and the job row's unique (schedule_id, scheduled_for) index refuses a second
    row for the same tick whatever happened to the schedule row in between (a PATCH, a restore).
    """
    now = utcnow()
    changes: dict[str, Any] = {"next_run_at": next_run_at, "updated_at": now}
    if job is not None:
        changes |= {"last_run_at": now, "last_job_id": job["job_id"], "run_count": Schedule.run_count + 1}
    moved = session.execute(
        update(Schedule)
        .where(Schedule.schedule_id == schedule.schedule_id, Schedule.next_run_at == schedule.next_run_at)
        .values(changes)
    )
    if moved.rowcount != 1:
        session.rollback()
        return False
    try:
        if job is not None:
            session.execute(insert(JobRecord), [job])
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def active_summary(session: Session) -> tuple[int, datetime | None]:
    """(schedules that will run again, the earliest next run among them)."""
    count, earliest = session.execute(
        select(func.count(), func.min(Schedule.next_run_at)).where(Schedule.next_run_at.is_not(None))
    ).one()
    return int(count), earliest
