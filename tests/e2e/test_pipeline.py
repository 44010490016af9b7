"""End to end on the real thing: HTTP submit -> RQ worker under supervisord -> PDF -> SQL row."""

from __future__ import annotations

import io
import time

import pytest
from pypdf import PdfReader

from ops.harness import RunningService
from store import jobs as job_store
from tests.conftest import sample_request
from tests.e2e.conftest import Api, start_service


@pytest.mark.sqlite_only
def test_pipeline_job_completes_pdf_downloads_and_sql_row_is_written(api: Api, service: RunningService) -> None:
    response = api.submit(sample_request() | {"code": "e2e-one"})
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    body = api.wait_for(job_id)
    assert body["status"] == "completed", body
    assert body["progress"] == 100
    pdf = api.get(body["download_url"])
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(pdf.content))
    text = "".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) >= 2 and "e2e-one" in text
    with service.session_factory()() as session:
        row = job_store.get_job(session, job_id)
    assert row.status == "completed" and row.completed_at and row.started_at
    assert row.file_size == len(pdf.content) and row.file_path and row.error_message is None


@pytest.mark.sqlite_only
def test_pipeline_supervisorctl_shows_every_program(service: RunningService) -> None:
    status = service.ctl("status")
    for program in ("redis", "api", "pdf_worker:pdf_worker-00", "pdf_worker:pdf_worker-01",
                    "webhook_worker:webhook_worker-00", "scheduler"):
        assert program in status and "RUNNING" in status.split(program, 1)[1].splitlines()[0], status


@pytest.mark.sqlite_only
def test_pipeline_high_priority_jobs_all_finish_before_any_low_starts(api: Api, service: RunningService) -> None:
    service.ctl("stop", "pdf_worker:*")
    low = [api.submit(sample_request() | {"code": f"low-{i}", "priority": "low"}).json()["job_id"] for i in range(5)]
    high = [api.submit(sample_request() | {"code": f"high-{i}", "priority": "high"}).json()["job_id"]
            for i in range(5)]
    # One worker makes the order strict: with two, a low job may start while the last high one runs.
    service.ctl("start", "pdf_worker:pdf_worker-00")
    try:
        done = {job_id: api.wait_for(job_id) for job_id in high + low}
    finally:
        service.ctl("start", "pdf_worker:*")
    assert all(body["status"] == "completed" for body in done.values())
    with service.session_factory()() as session:
        rows = {job_id: job_store.get_job(session, job_id) for job_id in high + low}
    last_high_done = max(rows[job_id].completed_at for job_id in high)
    first_low_start = min(rows[job_id].started_at for job_id in low)
    assert last_high_done <= first_low_start


def test_pipeline_stop_leaves_no_orphans(tmp_path) -> None:
    running = start_service(tmp_path / "var", WORKERS="1")
    pids = running.leftover_pids()
    assert len(pids) >= 5  # supervisord, redis, api (+gunicorn workers), worker, webhook worker, scheduler
    started = time.monotonic()
    assert running.stop() == 0
    assert running.leftover_pids() == []
    assert time.monotonic() - started < 60
