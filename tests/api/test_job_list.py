"""GET /api/jobs: ownership, filters, validation and cursor pagination."""

from __future__ import annotations

from datetime import timedelta

import pytest

from store import jobs as job_store
from store.models import utcnow
from tests.conftest import ADMIN, CLIENT_B, auth, run_jobs, sample_request

SUBMIT = "/api/reports/generate-async"


def submit(client, code: str, headers: dict | None = None, **changes) -> str:
    response = client.post(SUBMIT, json=sample_request() | {"code": code} | changes, headers=headers or auth())
    assert response.status_code == 202, response.json
    return response.json["job_id"]


def ids(response) -> list[str]:
    assert response.status_code == 200, response.json
    return [job["job_id"] for job in response.json["jobs"]]


def test_list_shows_own_jobs_newest_first_and_admin_sees_all(client) -> None:
    mine = [submit(client, f"a{i}") for i in range(3)]
    theirs = submit(client, "b0", headers=auth(CLIENT_B))
    assert ids(client.get("/api/jobs", headers=auth())) == mine[::-1]
    assert ids(client.get("/api/jobs", headers=auth(CLIENT_B))) == [theirs]
    assert ids(client.get("/api/jobs", headers=auth(ADMIN))) == [theirs, *mine[::-1]]
    first = client.get("/api/jobs", headers=auth()).json["jobs"][0]
    assert first["status"] == "queued" and first["code"] == "a2" and first["status_url"] == f"/api/jobs/{mine[2]}"
    assert client.get("/api/jobs").status_code == 401


def test_list_filters_by_status_product_and_code(client, runtime) -> None:
    done = submit(client, "done")
    run_jobs(runtime)
    waiting = submit(client, "waiting")
    form = submit(client, "form1", productId="formulirPersetujuan", data={
        "participant": {"name": "A", "birth_date": "2008-01-01"}, "guardian": {"name": "B"},
        "test_date": "2026-01-12", "consent": {"take_test": True}})
    assert ids(client.get("/api/jobs?status=completed", headers=auth())) == [done]
    assert ids(client.get("/api/jobs?status=queued", headers=auth())) == [form, waiting]
    assert ids(client.get("/api/jobs?productId=formulirPersetujuan", headers=auth())) == [form]
    assert ids(client.get("/api/jobs?code=waiting", headers=auth())) == [waiting]
    assert ids(client.get("/api/jobs?status=failed", headers=auth())) == []


def test_list_filters_by_creation_time(client, runtime) -> None:
    old, new = submit(client, "old"), submit(client, "new")
    with runtime.session() as session:
        job_store.get_job(session, old).created_at = utcnow() - timedelta(days=2)
        session.commit()
    yesterday = (utcnow() - timedelta(days=1)).isoformat()
    assert ids(client.get("/api/jobs", query_string={"created_after": yesterday}, headers=auth())) == [new]
    assert ids(client.get("/api/jobs", query_string={"created_before": yesterday}, headers=auth())) == [old]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"created_after": "2026-01-15T10:30:00"}, "created_after"),
        ({"created_before": "yesterday"}, "created_before"),
        ({"status": "done"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"product_id": "x"}, "product_id"),
    ],
)
def test_list_rejects_bad_parameters_with_400(client, query: dict, field: str) -> None:
    response = client.get("/api/jobs", query_string=query, headers=auth())
    assert response.status_code == 400
    assert field in {detail["field"] for detail in response.json["details"]}


def test_list_rejects_forged_cursor(client) -> None:
    for cursor in ("nonsense!", "eyJhIjoxfQ", "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwieCJd"):
        response = client.get("/api/jobs", query_string={"cursor": cursor}, headers=auth())
        assert response.status_code == 400 and response.json["error"] == "invalid_cursor"


def test_list_limit_defaults_to_50_and_is_capped_at_200(client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(max_queue_size=1000)
    for index in range(205):
        submit(client, f"c{index}")
    assert len(ids(client.get("/api/jobs", headers=auth()))) == 50
    response = client.get("/api/jobs?limit=1000", headers=auth())
    assert len(ids(response)) == 200 and response.json["limit"] == 200 and response.json["next_cursor"]


def test_list_pages_are_stable_while_new_jobs_arrive(client) -> None:
    older = [submit(client, f"p{i}") for i in range(5)]
    first = client.get("/api/jobs?limit=2", headers=auth()).json
    seen = [job["job_id"] for job in first["jobs"]]
    assert seen == [older[4], older[3]]
    for index in range(3):
        submit(client, f"new{index}")
    cursor = first["next_cursor"]
    while cursor:
        page = client.get("/api/jobs", query_string={"limit": 2, "cursor": cursor}, headers=auth()).json
        seen += [job["job_id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
    assert seen == older[::-1]
