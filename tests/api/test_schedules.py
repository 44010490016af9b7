"""POST/GET /api/schedules, GET/PATCH/DELETE /api/schedules/<id>: checked bodies, ownership, answers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobs.schedules import run_due_schedules
from store.models import utcnow
from tests.api.openapi_support import check_answer, document_of
from tests.conftest import ADMIN, CLIENT_B, auth, run_jobs, sample_request

URL = "/api/schedules"
ONE = URL + "/{schedule_id}"


def schedule_body(**changes) -> dict:  # noqa: ANN003
    return {"cron": "0 9 * * 1-5", "timezone": "Asia/Jakarta", "job": sample_request()} | changes


def create(client, **changes) -> dict:  # noqa: ANN001, ANN003
    response = client.post(URL, json=schedule_body(**changes), headers=auth())
    assert response.status_code == 201, response.json
    return response.json


def test_schedules_create_answers_201_with_the_schedule_and_its_first_run(app, client) -> None:
    response = client.post(URL, json=schedule_body(), headers=auth())
    body = check_answer(document_of(app), response, URL, "post")
    assert response.status_code == 201 and response.headers["Location"] == f"{URL}/{body['schedule_id']}"
    assert body["state"] == "active" and body["paused"] is False and body["missed"] == "run_once"
    assert body["next_run_at"].endswith("T02:00:00.000Z")  # 09:00 in Jakarta (UTC+7)
    assert body["job"]["code"] == sample_request()["code"] and "runAt" not in body["job"]
    assert body["client"] == "acme" and body["run_count"] == 0 and body["last_job_id"] is None


@pytest.mark.parametrize(("changes", "field", "status"), [
    ({"cron": "61 * * * *"}, "cron", 400),
    ({"cron": "* * *"}, "cron", 400),
    ({"timezone": "Jakarta"}, "timezone", 400),
    ({"missed": "burst"}, "missed", 400),
    ({"job": {"code": "x"}}, "job.productId", 400),
    ({"job": sample_request() | {"data": {"participant": {}}}}, "job.data.participant.name", 400),
    ({"job": sample_request() | {"runAt": "2026-01-01T00:00:00Z"}}, "job.runAt", 400),
    ({"job": sample_request() | {"callback": "http://10.1.2.3/hook"}}, "job.callback", 400),
    ({"job": sample_request() | {"productId": "noSuchReport"}}, "job.productId", 422),
    ({"start": "2027-01-02T00:00:00Z", "end": "2027-01-01T00:00:00Z"}, "body", 400),
    ({"end": "2020-01-01T00:00:00Z"}, "end", 400),
    ({"start": "2027-01-01"}, "start", 400),
    ({"every": "day"}, "every", 400),
])
def test_schedules_create_refuses_bad_fields_naming_them(app, client, changes: dict, field: str, status: int) -> None:
    response = client.post(URL, json=schedule_body(**changes), headers=auth())
    check_answer(document_of(app), response, URL, "post")
    assert response.status_code == status, response.json
    assert field in [detail["field"] for detail in response.json["details"]], response.json


def test_schedules_are_listed_for_their_client_and_every_one_for_an_admin(app, client) -> None:
    mine = [create(client, cron=f"{minute} 9 * * *")["schedule_id"] for minute in range(3)]
    theirs = client.post(URL, json=schedule_body(), headers=auth(CLIENT_B)).json["schedule_id"]
    page = client.get(f"{URL}?limit=2", headers=auth())
    first = check_answer(document_of(app), page, URL)
    assert [item["schedule_id"] for item in first["schedules"]] == mine[::-1][:2]  # newest first
    rest = client.get(f"{URL}?limit=2&cursor={first['next_cursor']}", headers=auth()).json
    assert [item["schedule_id"] for item in rest["schedules"]] == mine[:1] and rest["next_cursor"] is None
    everyone = client.get(URL, headers=auth(ADMIN)).json["schedules"]
    assert {item["schedule_id"] for item in everyone} == {*mine, theirs}
    for bad in ("limit=0", "limit=x", "cursor=../x", "sort=name"):
        assert client.get(f"{URL}?{bad}", headers=auth()).status_code == 400, bad


def test_schedules_of_another_client_are_not_found(app, client) -> None:
    schedule_id = create(client)["schedule_id"]
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(f"{URL}/{schedule_id}", json={"paused": True}, headers=auth(CLIENT_B))
        assert response.status_code == 404 and response.json["error"] == "not_found", method
    check_answer(document_of(app), client.get(f"{URL}/sch_nope", headers=auth()), ONE)
    assert client.get(f"{URL}/{schedule_id}", headers=auth(ADMIN)).status_code == 200


def test_schedules_patch_pauses_resumes_and_changes(app, client) -> None:
    document = document_of(app)
    schedule_id = create(client)["schedule_id"]
    url = f"{URL}/{schedule_id}"
    paused = check_answer(document, client.patch(url, json={"paused": True}, headers=auth()), ONE, "patch")
    assert paused["state"] == "paused" and paused["next_run_at"] is None
    resumed = client.patch(url, json={"paused": False, "cron": "30 6 * * *", "timezone": "UTC"}, headers=auth()).json
    assert resumed["state"] == "active" and resumed["next_run_at"].endswith("T06:30:00.000Z")
    changed = client.patch(url, json={"job": sample_request("formulirPersetujuan"), "missed": "skip"},
                           headers=auth()).json
    assert changed["job"]["productId"] == "formulirPersetujuan" and changed["missed"] == "skip"
    assert changed["next_run_at"] == resumed["next_run_at"]  # not a timing field: the next run stays
    ended = client.patch(url, json={"end": (utcnow() - timedelta(minutes=1)).isoformat()}, headers=auth()).json
    assert ended["state"] == "ended" and ended["next_run_at"] is None
    for bad, field in (({"cron": None}, "cron"), ({"job": {"code": "x"}}, "job.productId"), ({"pause": 1}, "pause")):
        response = client.patch(url, json=bad, headers=auth())
        assert response.status_code == 400 and field in [d["field"] for d in response.json["details"]], bad
    assert client.get(url, headers=auth()).json["missed"] == "skip"


def test_schedules_delete_answers_204_and_keeps_the_jobs_it_made(app, client, runtime) -> None:
    schedule_id = create(client, cron="* * * * * *")["schedule_id"]
    assert run_due_schedules(runtime, now=utcnow() + timedelta(seconds=2)) == 1
    job_id = client.get(f"{URL}/{schedule_id}", headers=auth()).json["last_job_id"]
    response = client.delete(f"{URL}/{schedule_id}", headers=auth())
    assert response.status_code == 204 and response.data == b""
    assert client.get(f"{URL}/{schedule_id}", headers=auth()).status_code == 404
    assert client.delete(f"{URL}/{schedule_id}", headers=auth()).status_code == 404
    assert client.get(f"/api/jobs/{job_id}", headers=auth()).json["schedule_id"] == schedule_id


def test_schedules_run_is_a_normal_job_with_schedule_id_in_its_status(app, client, runtime) -> None:
    schedule_id = create(client, cron="* * * * * *")["schedule_id"]
    assert run_due_schedules(runtime, now=utcnow() + timedelta(seconds=2)) == 1
    run_jobs(runtime)
    job_id = client.get(f"{URL}/{schedule_id}", headers=auth()).json["last_job_id"]
    status = check_answer(document_of(app), client.get(f"/api/jobs/{job_id}", headers=auth()), "/api/jobs/{job_id}")
    assert status["status"] == "completed" and status["schedule_id"] == schedule_id
    listed = client.get("/api/jobs", headers=auth()).json["jobs"]
    assert [job["schedule_id"] for job in listed] == [schedule_id]
    submitted = client.post("/api/reports/generate-async", json=sample_request("formulirPersetujuan"),
                            headers=auth()).json["job_id"]
    assert client.get(f"/api/jobs/{submitted}", headers=auth()).json["schedule_id"] is None


def test_schedules_show_in_queue_stats(app, client) -> None:
    stats = check_answer(document_of(app), client.get("/api/queue/stats", headers=auth()), "/api/queue/stats")
    assert stats["schedules_active"] == 0 and stats["next_schedule_run_at"] is None
    create(client, cron="0 9 * * *", start="2030-01-01T00:00:00Z")
    soonest = create(client, cron="0 8 * * *", timezone="UTC")
    paused = create(client, cron="* * * * *", paused=True)
    assert paused["state"] == "paused"
    stats = client.get("/api/queue/stats", headers=auth()).json
    assert stats["schedules_active"] == 2 and stats["next_schedule_run_at"] == soonest["next_run_at"]
