"""The PDF job: progress, timeouts, retries with RQ Retry, permanent failures."""

from __future__ import annotations

from store import jobs as job_store
from tests.conftest import auth, run_jobs, sample_request
from tests.workers.slow import SlowRegistry

SUBMIT = "/api/reports/generate-async"


def submit(client, **change) -> str:  # noqa: ANN003
    response = client.post(SUBMIT, json=sample_request() | change, headers=auth())
    assert response.status_code == 202, response.json
    return response.json["job_id"]


def row(rt, job_id: str):  # noqa: ANN201
    with rt.session() as session:
        return job_store.get_job(session, job_id)


def test_job_past_its_timeout_is_retried_then_failed_with_reason(client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(job_timeout=1, job_retry_delays=())
    runtime.overrides["templates"] = SlowRegistry(runtime.templates, delay=3)
    runtime.__dict__.pop("templates")
    job_id = submit(client)
    run_jobs(runtime)
    job = row(runtime, job_id)
    assert job.status == "failed"
    assert job.error_message == "timed out after 1 s"


def test_job_timeout_with_retries_left_is_retried(client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(job_timeout=1, job_retry_delays=(0,))
    slow = SlowRegistry(runtime.templates, delay=3)
    runtime.overrides["templates"] = slow
    runtime.__dict__.pop("templates")
    job_id = submit(client)
    run_jobs(runtime)
    job = row(runtime, job_id)
    assert job.status == "failed" and job.retry_count == 1 and job.attempts == 2
    assert slow.templates["minatBakatUmum"].renders == 2


def test_job_records_progress_and_processing_time(client, runtime) -> None:
    job_id = submit(client)
    run_jobs(runtime)
    job = row(runtime, job_id)
    assert job.status == "completed" and job.progress == 100 and job.processing_ms >= 0
    assert job.started_at <= job.completed_at


def test_permanent_failure_is_not_retried(client, runtime) -> None:
    job_id = submit(client)
    with runtime.session() as session:
        job = job_store.get_job(session, job_id)
        job.request_data = {"participant": {"name": "A"}, "scales": []}
        session.commit()
    run_jobs(runtime)
    job = row(runtime, job_id)
    assert job.status == "failed" and job.attempts == 1 and job.retry_count == 0
    assert "scales" in job.error_message
    assert runtime.redis.zcard("rq:scheduled:normal") == 0
