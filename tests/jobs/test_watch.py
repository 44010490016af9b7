"""The SSE event stream and the wait of the sync endpoint, driven against the real SQL row."""

from __future__ import annotations

import json

from jobs import outcome
from jobs.submit import JobRequest, submit_job
from jobs.watch import HEARTBEAT_SECONDS, job_events, wait_until_final
from store import jobs as job_store
from tests.conftest import sample_request, take_database_down


def new_job(rt) -> str:
    request = JobRequest(code="w1", product_id="minatBakatUmum", data=sample_request()["data"])
    return submit_job(rt, "acme", request).job.job_id


def parse(chunks: list[str]) -> list[tuple[str, dict]]:
    events = []
    for chunk in chunks:
        fields = dict(line.split(": ", 1) for line in chunk.strip().splitlines() if not line.startswith(":"))
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


class Steps:
    """A `sleep` that moves the job one step further each time the stream waits."""

    def __init__(self, rt, job_id: str, steps: list):
        self.rt, self.job_id, self.steps, self.sleeps = rt, job_id, list(steps), 0

    def __call__(self, seconds: float) -> None:
        self.sleeps += 1
        if self.steps:
            self.steps.pop(0)(self.rt, self.job_id)


def started(rt, job_id: str) -> None:
    with rt.engine.begin() as connection:
        job_store.mark_started(connection, job_id)


def progress(percent: int, phase: str):
    def step(rt, job_id: str) -> None:
        with rt.session() as session:
            job_store.set_progress(session, job_id, percent, phase)
    return step


def nothing(rt, job_id: str) -> None:
    return None


def completed(rt, job_id: str) -> None:
    outcome.complete_job(rt, job_id, storage_backend="local", file_path="x", file_size=1, processing_ms=5)


def test_events_follow_the_job_in_order_and_stop_at_the_end(runtime) -> None:
    job_id = new_job(runtime)
    steps = Steps(runtime, job_id, [nothing, started, progress(10, "data loaded"), nothing,
                                    progress(40, "rendered"), completed, progress(99, "never seen")])
    chunks = list(job_events(runtime, job_id, interval=0.5, max_seconds=3600, sleep=steps))
    assert chunks[0] == "retry: 2000\n\n"
    events = parse(chunks)
    assert [name for name, _ in events] == ["progress", "progress", "progress", "progress", "complete"]
    assert [data["status"] for _, data in events] == ["queued", "processing", "processing", "processing",
                                                      "completed"]
    assert [data["progress"] for _, data in events] == [0, 0, 10, 40, 100]
    assert [data["phase"] for _, data in events] == ["job_queued", "job_started", "data_loaded", "rendered",
                                                     "complete"]
    assert events[2][1]["message"] == "data loaded"
    assert events[-1][1]["download_url"] == f"/api/jobs/{job_id}/download"
    assert all(set(data) >= {"status", "phase", "progress", "message"} for _, data in events)
    assert steps.sleeps == 6  # the stream ended right after the complete event


def test_events_end_with_error_when_the_job_fails_or_is_cancelled(runtime) -> None:
    job_id = new_job(runtime)
    outcome.end_job(runtime, job_id, "cancelled", error="cancelled on request")
    events = parse(list(job_events(runtime, job_id, interval=0.5, max_seconds=3600, sleep=lambda s: None)))
    assert events == [("error", events[0][1])]
    assert events[0][1]["status"] == "cancelled" and events[0][1]["message"] == "cancelled on request"
    assert events[0][1]["phase"] == "job_cancelled"


def test_events_send_heartbeats_and_close_after_max_seconds(runtime) -> None:
    job_id = new_job(runtime)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    chunks = list(job_events(runtime, job_id, interval=5, max_seconds=40, sleep=sleep, clock=lambda: now[0]))
    assert len(parse(chunks)) == 1  # nothing changed after the first event
    assert chunks.count(": keep-alive\n\n") == int(40 // HEARTBEAT_SECONDS)


def test_events_stream_waits_out_a_database_outage_and_goes_on(runtime) -> None:
    job_id = new_job(runtime)
    engine, session_factory = runtime.engine, runtime.session_factory

    def database_down(rt, job_id: str) -> None:
        started(rt, job_id)
        take_database_down(rt)

    def database_back(rt, job_id: str) -> None:
        rt.engine, rt.session_factory = engine, session_factory
        completed(rt, job_id)

    steps = Steps(runtime, job_id, [database_down, nothing, nothing, database_back])
    events = parse(list(job_events(runtime, job_id, interval=0.5, max_seconds=3600, sleep=steps)))
    assert [name for name, _ in events] == ["progress", "complete"]  # the outage ended no stream
    assert steps.sleeps == 4


def test_wait_until_final_returns_the_ended_job_or_the_latest_state(runtime) -> None:
    job_id = new_job(runtime)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    job = wait_until_final(runtime, job_id, timeout=3, interval=0.5, sleep=sleep, clock=lambda: now[0])
    assert job.status == "queued" and now[0] == 3
    steps = Steps(runtime, job_id, [started, completed])
    job = wait_until_final(runtime, job_id, timeout=60, interval=0.5, sleep=steps)
    assert job.status == "completed" and steps.sleeps == 2
