"""The PDF job: progress, timeouts, retries with RQ Retry, permanent failures."""

from __future__ import annotations

import pytest

from jobs.eta import DURATIONS_KEY
from jobs.lease import LEASE_PREFIX, lease_key
from jobs.queues import WEBHOOK_READY
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


def _executed_pipelines(monkeypatch) -> list[list[tuple]]:  # noqa: ANN001
    """Record the commands of every pipeline executed, and fail on a lease deleted outside one."""
    from redis import Redis
    from redis.client import Pipeline

    executed: list[list[tuple]] = []
    execute, delete = Pipeline.execute, Redis.delete

    def spy_execute(pipe, raise_on_error=True):  # noqa: ANN001, ANN202
        executed.append([tuple(str(a) for a in args) for args, _options in pipe.command_stack])
        return execute(pipe, raise_on_error)

    def spy_delete(client, *names):  # noqa: ANN001, ANN202
        if not isinstance(client, Pipeline):
            assert not any(str(name).startswith(LEASE_PREFIX) for name in names), "lease deleted on its own"
        return delete(client, *names)

    monkeypatch.setattr(Pipeline, "execute", spy_execute)
    monkeypatch.setattr(Redis, "delete", spy_delete)
    return executed


@pytest.mark.parametrize("callback", [True, False])
def test_job_end_hands_over_records_duration_and_gives_the_lease_back_in_one_round_trip(
    client, runtime, monkeypatch, callback: bool  # noqa: ANN001
) -> None:
    job_id = submit(client, callback="http://127.0.0.1:9/hook") if callback else submit(client)
    executed = _executed_pipelines(monkeypatch)
    run_jobs(runtime)
    assert row(runtime, job_id).status == "completed"
    ends = [commands for commands in executed if ("DEL", lease_key(job_id)) in commands]
    assert len(ends) == 1  # the lease goes in one pipeline...
    names = [command[0] for command in ends[0]]
    # ... with the duration and, when there is a webhook, the hand-over
    assert names == (["RPUSH", "EVAL", "DEL"] if callback else ["EVAL", "DEL"])
    assert not runtime.redis.exists(lease_key(job_id))
    assert runtime.redis.llen(DURATIONS_KEY) == 1
    listed = runtime.redis.lrange(WEBHOOK_READY, 0, -1)
    assert len(listed) == (1 if callback else 0) and all(entry.endswith(b":1") for entry in listed)
