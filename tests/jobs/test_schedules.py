"""Recurring schedules with an injected clock: one run per tick, missed runs, pause, start/end, DST days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from jobs.runtime import Runtime
from jobs.schedules import change_schedule, create_schedule, run_due_schedules, run_schedule
from store import schedules as schedule_store
from store.models import JobRecord, Schedule
from tests.conftest import run_jobs, sample_request

T0 = datetime(2026, 1, 5, 9, 0, 30, tzinfo=UTC)


def job() -> dict[str, Any]:
    body = sample_request("formulirPersetujuan")
    return {"code": body["code"], "productId": body["productId"], "data": body["data"]}


def make(rt: Runtime, cron: str = "0 * * * *", now: datetime = T0, **fields: Any) -> Schedule:
    return create_schedule(rt, "acme", {"cron": cron, "timezone": "UTC", "job": job(), **fields}, now=now)


def runs(rt: Runtime, schedule_id: str) -> list[JobRecord]:
    with rt.session() as session:
        query = select(JobRecord).where(JobRecord.schedule_id == schedule_id).order_by(JobRecord.scheduled_for)
        return list(session.scalars(query))


def load(rt: Runtime, schedule_id: str) -> Schedule:
    with rt.session() as session:
        return session.get(Schedule, schedule_id)


def test_schedules_make_one_queued_job_per_tick_and_it_runs(runtime: Runtime) -> None:
    schedule = make(runtime)
    assert schedule.next_run_at == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert run_due_schedules(runtime, now=datetime(2026, 1, 5, 9, 59, 59, tzinfo=UTC)) == 0
    at_ten = datetime(2026, 1, 5, 10, 0, 1, tzinfo=UTC)
    assert run_due_schedules(runtime, now=at_ten) == 1
    assert run_due_schedules(runtime, now=at_ten) == 0  # the tick is done
    [first] = runs(runtime, schedule.schedule_id)
    assert first.scheduled_for == datetime(2026, 1, 5, 10, tzinfo=UTC) and first.status == "queued"
    assert runtime.redis.llen("rq:queue:normal") == 1
    stored = load(runtime, schedule.schedule_id)
    assert stored.next_run_at == datetime(2026, 1, 5, 11, tzinfo=UTC)
    assert (stored.run_count, stored.last_job_id) == (1, first.job_id)
    run_jobs(runtime)
    assert runs(runtime, schedule.schedule_id)[0].status == "completed"


def test_schedules_tick_is_made_once_when_two_schedulers_handle_it(runtime: Runtime) -> None:
    schedule = make(runtime)
    with runtime.session() as session:
        [seen_by_a] = schedule_store.due_schedules(session, datetime(2026, 1, 5, 10, 0, 1, tzinfo=UTC))
    with runtime.session() as session:
        [seen_by_b] = schedule_store.due_schedules(session, datetime(2026, 1, 5, 10, 0, 1, tzinfo=UTC))
    now = datetime(2026, 1, 5, 10, 0, 1, tzinfo=UTC)
    assert run_schedule(runtime, seen_by_a, now) is not None
    assert run_schedule(runtime, seen_by_b, now) is None  # b read the schedule before a moved it on
    assert len(runs(runtime, schedule.schedule_id)) == 1


def test_schedules_unique_tick_key_refuses_a_second_job_for_the_tick(runtime: Runtime) -> None:
    schedule = make(runtime)
    now = datetime(2026, 1, 5, 10, 0, 1, tzinfo=UTC)
    first = run_schedule(runtime, schedule, now)
    with runtime.session() as session:  # the schedule row put back as it was (a restore, a PATCH race)
        session.get(Schedule, schedule.schedule_id).next_run_at = schedule.next_run_at
        session.commit()
    with runtime.session() as session:
        [again] = schedule_store.due_schedules(session, now)
    assert run_schedule(runtime, again, now) is None
    assert [job.job_id for job in runs(runtime, schedule.schedule_id)] == [first.job_id]
    assert load(runtime, schedule.schedule_id).next_run_at == schedule.next_run_at  # rolled back with it


@pytest.mark.parametrize(("missed", "made"), [("run_once", 1), ("skip", 0)])
def test_schedules_runs_missed_while_down_follow_the_setting(runtime: Runtime, missed: str, made: int) -> None:
    schedule = make(runtime, missed=missed)
    back = datetime(2026, 1, 5, 13, 20, tzinfo=UTC)  # down from before 10:00 to 13:20: 10, 11, 12, 13 missed
    assert run_due_schedules(runtime, now=back) == made
    found = runs(runtime, schedule.schedule_id)
    assert [job.scheduled_for for job in found] == [datetime(2026, 1, 5, 13, tzinfo=UTC)] * made
    assert load(runtime, schedule.schedule_id).next_run_at == datetime(2026, 1, 5, 14, tzinfo=UTC)
    assert run_due_schedules(runtime, now=back) == 0  # never a burst


def test_schedules_a_tick_late_by_less_than_schedule_missed_after_runs_even_when_skipping(runtime: Runtime) -> None:
    schedule = make(runtime, missed="skip")
    late = datetime(2026, 1, 5, 10, tzinfo=UTC) + timedelta(seconds=runtime.settings.schedule_missed_after)
    assert run_due_schedules(runtime, now=late) == 1
    assert runs(runtime, schedule.schedule_id)[0].scheduled_for == datetime(2026, 1, 5, 10, tzinfo=UTC)


def test_schedules_pause_stops_runs_and_resume_does_not_make_up_the_pause(runtime: Runtime) -> None:
    schedule = make(runtime)
    paused = change_schedule(runtime, schedule.schedule_id, "acme", {"paused": True}, now=T0)
    assert paused.paused and paused.next_run_at is None
    assert run_due_schedules(runtime, now=datetime(2026, 1, 5, 15, tzinfo=UTC)) == 0
    resumed = change_schedule(runtime, schedule.schedule_id, "acme", {"paused": False},
                              now=datetime(2026, 1, 5, 15, 30, tzinfo=UTC))
    assert resumed.next_run_at == datetime(2026, 1, 5, 16, tzinfo=UTC)
    assert runs(runtime, schedule.schedule_id) == []


def test_schedules_change_of_another_client_finds_nothing(runtime: Runtime) -> None:
    schedule = make(runtime)
    assert change_schedule(runtime, schedule.schedule_id, "other", {"paused": True}) is None
    assert change_schedule(runtime, schedule.schedule_id, "ops", {"paused": True}, admin=True) is not None


def test_schedules_start_and_end_bound_the_runs(runtime: Runtime) -> None:
    start, end = datetime(2026, 1, 6, 0, tzinfo=UTC), datetime(2026, 1, 6, 2, 30, tzinfo=UTC)
    schedule = make(runtime, start=start, end=end)
    assert schedule.next_run_at == start  # a tick at the start itself counts
    now = start
    while (due := load(runtime, schedule.schedule_id).next_run_at) is not None:
        now = due + timedelta(seconds=1)
        run_due_schedules(runtime, now=now)
    assert [job.scheduled_for.hour for job in runs(runtime, schedule.schedule_id)] == [0, 1, 2]
    assert run_due_schedules(runtime, now=now + timedelta(days=1)) == 0


def test_schedules_scheduler_down_past_the_end_runs_the_last_tick_before_the_end_once(runtime: Runtime) -> None:
    schedule = make(runtime, end=datetime(2026, 1, 5, 12, 30, tzinfo=UTC))
    assert run_due_schedules(runtime, now=datetime(2026, 1, 5, 18, tzinfo=UTC)) == 1
    assert [job.scheduled_for.hour for job in runs(runtime, schedule.schedule_id)] == [12]
    assert load(runtime, schedule.schedule_id).next_run_at is None


def test_schedules_each_tick_is_a_run_while_the_previous_run_still_waits(runtime: Runtime) -> None:
    schedule = make(runtime)
    for hour in (10, 11, 12):
        assert run_due_schedules(runtime, now=datetime(2026, 1, 5, hour, 0, 1, tzinfo=UTC)) == 1
    found = runs(runtime, schedule.schedule_id)
    assert [job.status for job in found] == ["queued"] * 3 and len({job.job_id for job in found}) == 3


@pytest.mark.parametrize(("cron", "day", "expected"), [
    ("30 2 * * *", datetime(2026, 3, 8), ["03-07 02:30", "03-08 03:00", "03-09 02:30"]),  # spring forward
    ("30 1 * * *", datetime(2026, 11, 1), ["10-31 01:30", "11-01 01:30", "11-02 01:30"]),  # fall back
])
def test_schedules_daily_run_happens_once_on_a_dst_change_day(runtime: Runtime, cron: str, day: datetime,
                                                              expected: list[str]) -> None:
    zone = ZoneInfo("America/New_York")
    begin = (day - timedelta(days=1)).replace(tzinfo=zone)
    schedule = create_schedule(runtime, "acme", {"cron": cron, "timezone": "America/New_York", "job": job()},
                               now=begin)
    now = begin
    while now < begin + timedelta(days=3):  # the scheduler's clock, every 5 minutes across three days
        now += timedelta(minutes=5)
        run_due_schedules(runtime, now=now)
    made = [job.scheduled_for.astimezone(zone).strftime("%m-%d %H:%M") for job in runs(runtime, schedule.schedule_id)]
    assert made == expected


def test_schedules_of_a_client_that_is_gone_make_no_runs(runtime: Runtime) -> None:
    schedule = create_schedule(runtime, "removed-client", {"cron": "0 * * * *", "timezone": "UTC", "job": job()},
                               now=T0)
    assert run_due_schedules(runtime, now=datetime(2026, 1, 5, 10, 0, 1, tzinfo=UTC)) == 0
    assert runs(runtime, schedule.schedule_id) == []
    assert load(runtime, schedule.schedule_id).next_run_at == datetime(2026, 1, 5, 11, tzinfo=UTC)
