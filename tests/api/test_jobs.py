"""GET /api/jobs/<id> and /download, health and the dashboard, with jobs run in-process."""

from __future__ import annotations

import io

from pypdf import PdfReader

from store import jobs as job_store
from tests.conftest import ADMIN, CLIENT_B, auth, run_jobs, sample_request, unreachable_redis

SUBMIT = "/api/reports/generate-async"


def submit(client, body: dict | None = None, headers: dict | None = None) -> str:
    response = client.post(SUBMIT, json=body or sample_request(), headers=headers or auth())
    assert response.status_code == 202, response.json
    return response.json["job_id"]


def test_job_status_of_queued_job(client) -> None:
    job_id = submit(client)
    body = client.get(f"/api/jobs/{job_id}", headers=auth()).json
    assert body["status"] == "queued" and body["progress"] == 0
    assert body["code"] == sample_request()["code"] and body["productId"] == "minatBakatUmum"
    assert body["created_at"].endswith("Z") and body["started_at"] is None
    assert body["download_url"] is None and body["retry_count"] == 0 and body["error"] is None


def test_job_completes_and_pdf_downloads(client, runtime) -> None:
    job_id = submit(client)
    run_jobs(runtime)
    body = client.get(f"/api/jobs/{job_id}", headers=auth()).json
    assert body["status"] == "completed", body
    assert body["progress"] == 100
    assert body["started_at"] and body["completed_at"]
    assert body["download_url"] == f"/api/jobs/{job_id}/download"
    response = client.get(body["download_url"], headers=auth())
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    assert ".pdf" in response.headers["Content-Disposition"]
    reader = PdfReader(io.BytesIO(response.data))
    assert len(reader.pages) >= 2
    assert sample_request()["code"] in reader.pages[0].extract_text()
    with runtime.session() as session:
        row = job_store.get_job(session, job_id)
    assert row.file_size == len(response.data) and row.processing_ms is not None


def test_job_download_while_not_completed_is_409(client) -> None:
    job_id = submit(client)
    response = client.get(f"/api/jobs/{job_id}/download", headers=auth())
    assert response.status_code == 409
    assert response.json["error"] == "not_completed"


def test_unknown_job_is_404(client) -> None:
    for path in ("/api/jobs/pdf_nope", "/api/jobs/pdf_nope/download"):
        response = client.get(path, headers=auth())
        assert response.status_code == 404 and response.json["error"] == "not_found"


def test_another_clients_job_is_404_everywhere(client, runtime) -> None:
    job_id = submit(client)
    run_jobs(runtime)
    for path in (f"/api/jobs/{job_id}", f"/api/jobs/{job_id}/download"):
        assert client.get(path, headers=auth(CLIENT_B)).status_code == 404
    assert client.get(f"/api/jobs/{job_id}", headers=auth(ADMIN)).status_code == 200


def test_job_with_data_failing_in_worker_fails_at_once_with_message(client, runtime) -> None:
    job_id = submit(client)
    with runtime.session() as session:
        row = job_store.get_job(session, job_id)
        row.request_data = {"participant": {"name": "x"}}  # bypasses submit validation
        session.commit()
    run_jobs(runtime)
    body = client.get(f"/api/jobs/{job_id}", headers=auth()).json
    assert body["status"] == "failed"
    assert body["retry_count"] == 0
    assert "scales" in body["error"]


def test_unknown_endpoint_is_json_404(client) -> None:
    response = client.get("/api/nothing-here", headers=auth())
    assert response.status_code == 404 and response.json["error"] == "not_found"


def test_wrong_method_is_json_405(client) -> None:
    response = client.get(SUBMIT, headers=auth())
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"


def test_healthz_and_readyz(client) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"] == {"redis": "ok", "sql": "ok"}


def test_readyz_is_503_when_redis_is_down(client, runtime) -> None:
    runtime.redis = unreachable_redis(runtime.settings)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json["checks"]["redis"].startswith("unavailable")


def test_dashboard_needs_basic_auth(client) -> None:
    assert client.get("/rq/").status_code == 401
    assert client.get("/rq/", auth=("admin", "wrong")).status_code == 401
    response = client.get("/rq/", auth=("admin", "dash-secret"))
    assert response.status_code == 200 and b"RQ" in response.data
