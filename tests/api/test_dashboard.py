"""rq-dashboard at /rq against the real app and Redis: actions through SQL or refused, same-origin POSTs."""

from __future__ import annotations

import pytest
from rq import Queue
from rq.job import Job

from tests.conftest import auth, break_job_data, run_jobs, sample_request

pytestmark = pytest.mark.sqlite_only  # not about SQL: SQLite only (tests/conftest.py)

LOGIN = ("admin", "dash-secret")
HOME = "http://localhost"  # the test client's host
SAME = {"Origin": HOME}


def _failed_job(client, runtime, code: str = "dash-1") -> str:  # noqa: ANN001
    """A job that failed in the worker: `failed` in SQL and in RQ's failed registry."""
    job_id = client.post("/api/reports/generate-async", json=sample_request() | {"code": code},
                         headers=auth()).json["job_id"]
    break_job_data(runtime.session, job_id)
    run_jobs(runtime)
    assert client.get(f"/api/jobs/{job_id}", headers=auth()).json["status"] == "failed"
    assert job_id in Queue("normal", connection=runtime.redis).failed_job_registry.get_job_ids()
    return job_id


def _queued_job(client, code: str = "dash-q") -> str:  # noqa: ANN001
    return client.post("/api/reports/generate-async", json=sample_request() | {"code": code},
                       headers=auth()).json["job_id"]


def _redis_state(runtime) -> dict[bytes, bytes | None]:  # noqa: ANN001
    """Every Redis key with its serialised value: equal snapshots mean nothing changed."""
    return {key: runtime.redis.dump(key) for key in sorted(runtime.redis.keys("*"))}


def _status(client, job_id: str) -> str:  # noqa: ANN001
    return client.get(f"/api/jobs/{job_id}", headers=auth()).json["status"]


def test_dashboard_requeue_retries_through_sql_and_the_job_runs(client, runtime) -> None:
    job_id = _failed_job(client, runtime)
    first_start = client.get(f"/api/jobs/{job_id}", headers=auth()).json["started_at"]
    response = client.post(f"/rq/job/{job_id}/requeue", auth=LOGIN, headers=SAME)
    assert response.status_code == 200 and response.json["status"] == "OK"
    assert _status(client, job_id) == "queued"  # the API agrees at once
    assert runtime.redis.lrange("rq:queue:normal", 0, -1) == [job_id.encode()]
    run_jobs(runtime)  # the job really runs again (after rq's own requeue the worker skipped it)
    again = client.get(f"/api/jobs/{job_id}", headers=auth()).json
    assert again["status"] == "failed" and again["started_at"] > first_start  # its data is still broken
    assert Job.fetch(job_id, connection=runtime.redis).get_status() == "failed"  # dashboard and API agree


def test_dashboard_requeue_of_a_job_that_is_not_failed_is_409(client, runtime) -> None:
    job_id = _queued_job(client)
    response = client.post(f"/rq/job/{job_id}/requeue", auth=LOGIN, headers=SAME)
    assert response.status_code == 409 and "only failed or cancelled" in response.json["message"]
    assert client.post("/rq/job/nope/requeue", auth=LOGIN, headers=SAME).status_code == 404


def test_dashboard_requeue_all_retries_the_queues_failed_jobs_through_sql(client, runtime) -> None:
    first, second = _failed_job(client, runtime, "dash-a"), _failed_job(client, runtime, "dash-b")
    response = client.post("/rq/requeue/normal", auth=LOGIN, headers=SAME)
    assert response.status_code == 200
    assert response.json["count"] == 2 and sorted(response.json["requeued"]) == sorted([first, second])
    assert _status(client, first) == _status(client, second) == "queued"


@pytest.mark.parametrize("path", ["/rq/requeue/normal", "/rq/requeue/high"])
def test_dashboard_get_requeue_all_changes_nothing(client, runtime, path: str) -> None:
    job_id = _failed_job(client, runtime)
    before = _redis_state(runtime)
    response = client.get(path, auth=LOGIN)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert _redis_state(runtime) == before and _status(client, job_id) == "failed"


def test_dashboard_delete_empty_and_compact_are_switched_off(client, runtime) -> None:
    failed = _failed_job(client, runtime)
    queued = _queued_job(client)  # after the worker ran, so it stays queued
    before = _redis_state(runtime)
    for path in (f"/rq/job/{queued}/delete", f"/rq/job/{failed}/delete", "/rq/queue/normal/queued/empty",
                 "/rq/queue/normal/failed/empty", "/rq/queue/normal/compact"):
        response = client.post(path, auth=LOGIN, headers=SAME)
        assert response.status_code == 403, path
        assert response.json["error"] == "dashboard_action_switched_off"
        assert "POST /api/jobs/<job_id>/cancel" in response.json["message"]
    assert _redis_state(runtime) == before
    assert (_status(client, queued), _status(client, failed)) == ("queued", "failed")


def test_every_state_changing_dashboard_route_is_taken_over(app) -> None:
    from api.dashboard import requeue_job, requeue_queue, switched_off

    changing = {rule.endpoint for rule in app.url_map.iter_rules()
                if rule.endpoint.startswith("rq_dashboard.") and set(rule.methods) - {"GET", "HEAD", "OPTIONS"}}
    assert changing == {"rq_dashboard.delete_job_view", "rq_dashboard.requeue_job_view", "rq_dashboard.requeue_all",
                        "rq_dashboard.empty_queue", "rq_dashboard.compact_queue"}
    assert {endpoint: app.view_functions[endpoint] for endpoint in changing} == {
        "rq_dashboard.delete_job_view": switched_off, "rq_dashboard.empty_queue": switched_off,
        "rq_dashboard.compact_queue": switched_off, "rq_dashboard.requeue_job_view": requeue_job,
        "rq_dashboard.requeue_all": requeue_queue,
    }


def test_dashboard_get_pages_change_no_state(client, runtime, app) -> None:
    failed = _failed_job(client, runtime)
    queued = _queued_job(client)  # after the worker ran, so it stays queued
    before = _redis_state(runtime)
    pages = ["/rq/", "/rq/0/view/workers", "/rq/0/data/queues.json", "/rq/0/data/workers.json",
             f"/rq/0/view/job/{failed}", f"/rq/0/data/job/{queued}.json", f"/rq/0/data/job/{failed}.json"]
    pages += [f"/rq/0/view/jobs/normal/{registry}/8/asc/1" for registry in ("queued", "failed", "finished")]
    pages += [f"/rq/0/data/jobs/normal/{registry}/8/asc/1.json" for registry in ("queued", "failed", "started")]
    for page in pages:
        assert client.get(page, auth=LOGIN).status_code == 200, page
    assert _redis_state(runtime) == before
    assert (_status(client, queued), _status(client, failed)) == ("queued", "failed")


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Referer": "https://evil.example/rq/"},
    {"Origin": "http://localhost.evil.example"},
    {},
])
def test_dashboard_post_from_another_origin_is_403(client, runtime, headers: dict[str, str]) -> None:
    job_id = _failed_job(client, runtime)
    response = client.post(f"/rq/job/{job_id}/requeue", auth=LOGIN, headers=headers)
    assert response.status_code == 403 and response.json["error"] == "cross_origin_refused"
    assert _status(client, job_id) == "failed"


@pytest.mark.parametrize("headers", [
    {"Origin": HOME},
    {"Origin": "http://LOCALHOST:80"},
    {"Referer": f"{HOME}/rq/0/view/jobs/normal/failed/8/asc/1"},
])
def test_dashboard_post_from_its_own_page_is_accepted(client, runtime, headers: dict[str, str]) -> None:
    job_id = _failed_job(client, runtime)
    assert client.post(f"/rq/job/{job_id}/requeue", auth=LOGIN, headers=headers).status_code == 200


def test_dashboard_post_from_public_base_url_is_accepted(runtime) -> None:
    from api import create_app

    settings = runtime.settings.with_changes(public_base_url="https://pdf.example.com")
    client = create_app(settings, runtime).test_client()
    response = client.post("/rq/requeue/normal", auth=LOGIN, headers={"Origin": "https://pdf.example.com"})
    assert response.status_code == 200 and response.json["count"] == 0


def test_dashboard_post_needs_the_login_first(client) -> None:
    assert client.post("/rq/requeue/normal", headers=SAME).status_code == 401
