"""The audit trail of state-changing calls, GET /api/audit for admins, request ids and the access log."""

from __future__ import annotations

import logging
import re

from flask import Flask
from flask.testing import FlaskClient

from jobs.runtime import Runtime
from tests.api.openapi_support import check_answer, document_of
from tests.conftest import ADMIN, CLIENT_A, CLIENT_B, auth, break_job_data, run_jobs, sample_request
from tests.workers.webhook_support import run_webhooks

SUBMIT = "/api/reports/generate-async"


def audit(client: FlaskClient, query: str = "") -> list[dict]:
    answer = client.get(f"/api/audit{query}", headers=auth(ADMIN))
    assert answer.status_code == 200, answer.json
    return answer.json["events"]


def test_state_changing_calls_are_recorded_with_client_action_job_time_and_source(
    client: FlaskClient, runtime: Runtime, receiver
) -> None:  # noqa: ANN001
    body = sample_request() | {"callback": receiver.url()}
    job_id = client.post(SUBMIT, json=body, headers=auth() | {"X-Request-Id": "n8n-exec-42"},
                         environ_base={"REMOTE_ADDR": "10.9.8.7"}).json["job_id"]
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=auth(ADMIN)).status_code == 200  # an admin steps in
    break_job_data(runtime.session, job_id)
    assert client.post(f"/api/jobs/{job_id}/retry", headers=auth()).status_code == 202
    run_jobs(runtime)
    run_webhooks(runtime)
    assert client.post(f"/api/jobs/{job_id}/callbacks/redeliver", headers=auth()).status_code == 202
    events = audit(client, f"?job_id={job_id}")
    assert [(e["action"], e["client"], e["status"]) for e in events] == [
        ("job.redeliver", "acme", 202), ("job.retry", "acme", 202), ("job.cancel", "ops", 200),
        ("job.submit", "acme", 202)]
    submitted = events[-1]
    assert submitted["source"] == "10.9.8.7" and submitted["request_id"] == "n8n-exec-42"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", submitted["at"])
    assert all(e["job_id"] == job_id for e in events)


def test_refused_and_read_only_calls_are_not_audited(client: FlaskClient) -> None:
    job_id = client.post(SUBMIT, json=sample_request(), headers=auth()).json["job_id"]
    client.get(f"/api/jobs/{job_id}", headers=auth())
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=auth(CLIENT_B)).status_code == 404
    assert client.post(SUBMIT, json={"code": "x"}, headers=auth()).status_code == 400
    assert [e["action"] for e in audit(client)] == ["job.submit"]


def test_a_repeated_submit_is_audited_with_its_status(client: FlaskClient) -> None:
    first = client.post(SUBMIT, json=sample_request(), headers=auth())
    again = client.post(SUBMIT, json=sample_request(), headers=auth())
    assert (first.status_code, again.status_code) == (202, 200)
    assert [(e["status"], e["job_id"]) for e in audit(client)] == [(200, first.json["job_id"]),
                                                                   (202, first.json["job_id"])]


def test_audit_is_for_admin_clients_only(client: FlaskClient) -> None:
    refused = client.get("/api/audit", headers=auth(CLIENT_A))
    assert refused.status_code == 403 and refused.json["error"] == "admin_only"
    assert client.get("/api/audit").status_code == 401


def test_audit_pages_newest_first_and_filters(app: Flask, client: FlaskClient) -> None:
    for index in range(5):
        client.post(SUBMIT, json=sample_request() | {"code": f"c{index}"}, headers=auth())
    client.post(SUBMIT, json=sample_request() | {"code": "b"}, headers=auth(CLIENT_B))
    first = check_answer(document_of(app), client.get("/api/audit?limit=4", headers=auth(ADMIN)), "/api/audit")
    second = client.get(f"/api/audit?limit=4&cursor={first['next_cursor']}", headers=auth(ADMIN)).json
    ids = [e["id"] for e in first["events"] + second["events"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 6 and second["next_cursor"] is None
    assert [e["client"] for e in audit(client, "?client=other")] == ["other"]
    assert len(audit(client, "?action=job.submit&client=acme")) == 5
    assert audit(client, "?action=job.cancel") == []


def test_audit_refuses_bad_parameters_with_400(client: FlaskClient) -> None:
    for query in ("?cursor=nonsense", "?limit=0", "?colour=red"):
        answer = client.get(f"/api/audit{query}", headers=auth(ADMIN))
        assert answer.status_code == 400 and answer.json["details"], query


def test_every_answer_carries_a_request_id(client: FlaskClient) -> None:
    assert client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-Id": "bad id; " + "x" * 80}).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_access_log_has_one_key_value_line_per_request(client: FlaskClient, caplog) -> None:  # noqa: ANN001
    caplog.set_level(logging.INFO, logger="api.access")
    client.post(SUBMIT, json=sample_request(), headers=auth() | {"X-Request-Id": "r-1"})
    client.get("/api/jobs/%0Aforged%20line", headers={"X-API-Key": "wrong"})
    lines = [r.getMessage() for r in caplog.records if r.name == "api.access"]
    assert len(lines) == 2
    assert re.fullmatch(r"method=POST path=/api/reports/generate-async status=202 client=acme "
                        r"duration_ms=\d+\.\d request_id=r-1 source=127\.0\.0\.1", lines[0])
    assert "status=401 client=- " in lines[1] and "\n" not in lines[1] and "path=/api/jobs/%0Aforged%20line" in lines[1]
    assert "wrong" not in caplog.text
