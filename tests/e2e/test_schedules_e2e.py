"""Recurring schedules with the real scheduler: the service's scheduler plus a second scheduler process (as on
a second host), a schedule every 2 seconds for a minute, a pause, and a tick missed while no scheduler ran."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from ops.harness import RunningService
from ops.supervise import PROJECT_DIR
from store.models import JobRecord, utcnow
from tests.conftest import sample_request
from tests.e2e.conftest import Api, start_service

MISSED_AFTER = 4  # SCHEDULE_MISSED_AFTER of this service: a tick handled later than this counts as missed


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    running = start_service(tmp_path_factory.mktemp("schedules") / "var", SCHEDULE_MISSED_AFTER=str(MISSED_AFTER))
    yield running
    running.stop()


@pytest.fixture
def second_scheduler(service: RunningService) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m workers.scheduler` beside the service's own, on the same Redis and SQL."""
    log = open(service.data_dir / "second-scheduler.log", "ab")  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, "-m", "workers.scheduler"], cwd=PROJECT_DIR, env=service.env,
                               stdout=log, stderr=subprocess.STDOUT)
    yield process
    process.terminate()
    process.wait(timeout=30)
    log.close()


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def create(api: Api, cron: str, code: str, **fields: str) -> dict:
    body = {"cron": cron, "timezone": "UTC", "job": sample_request("formulirPersetujuan") | {"code": code}, **fields}
    response = api.post("/api/schedules", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def runs(service: RunningService, schedule_id: str) -> list[JobRecord]:
    with service.session_factory()() as session:
        query = select(JobRecord).where(JobRecord.schedule_id == schedule_id).order_by(JobRecord.scheduled_for)
        return list(session.scalars(query))


def wait_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - utcnow()).total_seconds()))


@pytest.mark.timeout(600)
def test_schedule_every_2_s_makes_one_job_per_tick_with_two_schedulers_and_pause_stops_it(
        service: RunningService, api: Api, second_scheduler: subprocess.Popen[bytes]) -> None:
    end = utcnow() + timedelta(seconds=32)
    minute = create(api, "* * * * * */2", "every-2s", end=end.isoformat())
    paused = create(api, "* * * * * */2", "paused-2s")
    wait_until(utcnow() + timedelta(seconds=10))
    answer = api.http.patch(f"{api.base}/api/schedules/{paused['schedule_id']}", json={"paused": True},
                            headers=api.headers, timeout=10)
    paused_at = utcnow()
    assert answer.status_code == 200 and answer.json()["state"] == "paused"
    wait_until(end + timedelta(seconds=5))
    assert second_scheduler.poll() is None

    expected, tick = [], when(minute["next_run_at"])
    while tick <= end:
        expected.append(tick)
        tick += timedelta(seconds=2)
    made = runs(service, minute["schedule_id"])
    assert [job.scheduled_for for job in made] == expected  # every tick once, none twice
    assert len(expected) >= 15
    final = api.get(f"/api/schedules/{minute['schedule_id']}").json()
    assert final["state"] == "ended" and final["run_count"] == len(expected)

    before_pause = runs(service, paused["schedule_id"])
    assert 3 <= len(before_pause) and all(job.scheduled_for <= paused_at for job in before_pause)
    for job in made[:3] + made[-3:]:
        body = api.wait_for(job.job_id, timeout=120)
        assert body["status"] == "completed" and body["schedule_id"] == minute["schedule_id"]


@pytest.mark.timeout(600)
def test_schedule_tick_missed_while_no_scheduler_ran_follows_its_missed_setting(
        service: RunningService, api: Api) -> None:
    once = create(api, "* * * * * */20", "missed-once", missed="run_once")
    skip = create(api, "* * * * * */20", "missed-skip", missed="skip")
    first = when(once["next_run_at"])
    wait_until(first + timedelta(seconds=1))
    deadline = time.monotonic() + 30
    while not (runs(service, once["schedule_id"]) and runs(service, skip["schedule_id"])):
        assert time.monotonic() < deadline, "the first tick was not run"
        time.sleep(0.2)
    assert "stopped" in service.ctl("stop", "scheduler")
    missed = first + timedelta(seconds=20)
    wait_until(missed + timedelta(seconds=MISSED_AFTER + 2))  # the tick passes with no scheduler running
    assert "started" in service.ctl("start", "scheduler")
    deadline = time.monotonic() + 10
    while api.get(f"/api/schedules/{skip['schedule_id']}").json()["next_run_at"] != (
            missed + timedelta(seconds=20)).isoformat(timespec="milliseconds").replace("+00:00", "Z"):
        assert time.monotonic() < deadline, "the restarted scheduler did not handle the missed tick"
        time.sleep(0.2)
    assert [job.scheduled_for for job in runs(service, skip["schedule_id"])] == [first]
    late = runs(service, once["schedule_id"])
    assert [job.scheduled_for for job in late] == [first, missed]  # one run now for the missed tick
    assert late[1].created_at - missed > timedelta(seconds=MISSED_AFTER)
