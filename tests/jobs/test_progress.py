"""Progress of running jobs: every step in the RQ meta, SQL now and then, the status overlays the meta."""

from __future__ import annotations

import time

from rq.job import Job

from jobs.progress import META_PROGRESS_INTERVAL, SQL_PROGRESS_INTERVAL
from store import jobs as job_store
from tests.conftest import auth, sample_request
from workers.pdf_job import ProgressReporter

SUBMIT = "/api/reports/generate-async"


def _started_job(client, runtime) -> tuple[str, Job]:  # noqa: ANN001
    job_id = client.post(SUBMIT, json=sample_request(), headers=auth()).json["job_id"]
    with runtime.engine.begin() as connection:
        job_store.mark_started(connection, job_id)
    return job_id, Job.fetch(job_id, connection=runtime.redis)


def _sql_progress(runtime, job_id: str) -> tuple[int, str | None]:  # noqa: ANN001
    with runtime.session() as session:
        row = job_store.get_job(session, job_id)
    return row.progress, row.phase


def _meta_progress(runtime, job_id: str) -> tuple[int | None, str | None]:  # noqa: ANN001
    meta = Job.fetch(job_id, connection=runtime.redis).get_meta()
    return meta.get("progress"), meta.get("phase")


def test_progress_reporter_publishes_the_current_step_on_flush_and_sql_after_the_interval(client, runtime) -> None:
    job_id, rq_job = _started_job(client, runtime)
    report = ProgressReporter(runtime, job_id, rq_job)
    report(10, "data loaded")
    report(20, "layout built")  # steps are only remembered ...
    assert _meta_progress(runtime, job_id) == (None, None)
    report.flush()  # ... until the lease thread's tick publishes the current one
    assert _meta_progress(runtime, job_id) == (20, "layout built")
    assert _sql_progress(runtime, job_id) == (0, "started")
    report.sql_written -= SQL_PROGRESS_INTERVAL  # as if the step had taken the whole SQL interval
    report(50, "saving to local disk")
    assert _sql_progress(runtime, job_id) == (50, "saving to local disk")


def test_progress_reporter_force_writes_the_meta_at_once(client, runtime) -> None:
    job_id, rq_job = _started_job(client, runtime)
    ProgressReporter(runtime, job_id, rq_job)(50, "upload to Google Drive in progress", force=True)
    assert _meta_progress(runtime, job_id) == (50, "upload to Google Drive in progress")


def test_a_step_that_lasts_shows_in_the_status_within_the_interval(client, runtime) -> None:
    from jobs.lease import job_lease

    job_id, rq_job = _started_job(client, runtime)
    report = ProgressReporter(runtime, job_id, rq_job)
    with job_lease(runtime.redis, job_id, 30, tick=report.flush, tick_every=META_PROGRESS_INTERVAL):
        report(40, "rendered")
        deadline = time.monotonic() + 5
        while _meta_progress(runtime, job_id) != (40, "rendered") and time.monotonic() < deadline:
            time.sleep(0.02)
    assert _meta_progress(runtime, job_id) == (40, "rendered")


def test_progress_reporter_without_rq_job_writes_sql(client, runtime) -> None:
    job_id, _ = _started_job(client, runtime)
    ProgressReporter(runtime, job_id, None)(40, "rendered")
    assert _sql_progress(runtime, job_id) == (40, "rendered")


def test_job_status_of_processing_job_shows_the_meta_progress(client, runtime) -> None:
    job_id, rq_job = _started_job(client, runtime)
    ProgressReporter(runtime, job_id, rq_job)(40, "rendered", force=True)
    body = client.get(f"/api/jobs/{job_id}", headers=auth()).json
    assert body["status"] == "processing"
    assert (body["progress"], body["phase"]) == (40, "rendered")


def test_job_status_of_queued_job_ignores_meta(client, runtime) -> None:
    job_id = client.post(SUBMIT, json=sample_request(), headers=auth()).json["job_id"]
    rq_job = Job.fetch(job_id, connection=runtime.redis)
    rq_job.meta.update(progress=70, phase="stale")
    rq_job.save_meta()
    body = client.get(f"/api/jobs/{job_id}", headers=auth()).json
    assert (body["status"], body["progress"], body["phase"]) == ("queued", 0, "queued")


def test_enqueued_job_hash_stays_compact_in_the_embedded_redis(client, runtime) -> None:
    job_id = client.post(SUBMIT, json=sample_request(), headers=auth()).json["job_id"]
    # The embedded Redis config keeps RQ's job hash in the compact encoding (~0.65 KB, not ~2.1 KB).
    assert runtime.redis.object("encoding", f"rq:job:{job_id}") in (b"ziplist", b"listpack")
