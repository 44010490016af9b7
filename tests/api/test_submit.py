"""POST /api/reports/generate-async: auth, validation, acceptance, dedupe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from store import jobs as job_store
from tests.conftest import CLIENT_A, CLIENT_B, auth, sample_request, unreachable_redis

URL = "/api/reports/generate-async"


def test_submit_without_key_is_401(client) -> None:
    response = client.post(URL, json=sample_request())
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"
    assert "Authorization: Bearer" in response.json["message"]


def test_submit_with_wrong_key_is_401(client) -> None:
    response = client.post(URL, json=sample_request(), headers={"X-API-Key": "nope"})
    assert response.status_code == 401
    assert "Invalid API key" in response.json["message"]


def test_submit_accepts_x_api_key_header(client) -> None:
    response = client.post(URL, json=sample_request(), headers={"X-API-Key": CLIENT_A.api_key})
    assert response.status_code == 202


def test_submit_answers_202_with_job_and_location(client, runtime) -> None:
    response = client.post(URL, json=sample_request(), headers=auth())
    assert response.status_code == 202
    body = response.json
    assert body["job_id"].startswith("pdf_")
    assert body["status"] == "queued"
    assert body["status_url"] == f"/api/jobs/{body['job_id']}"
    assert response.headers["Location"] == body["status_url"]
    assert set(body) == {"job_id", "status", "estimated_completion", "position_in_queue", "status_url"}
    assert body["position_in_queue"] == 0
    with runtime.session() as session:
        row = job_store.get_job(session, body["job_id"])
    assert row.status == "queued" and row.client_name == "acme" and row.code == sample_request()["code"]
    assert runtime.redis.lrange("rq:queue:normal", 0, -1) == [body["job_id"].encode()]


@pytest.mark.parametrize("priority", ["high", "normal", "low"])
def test_submit_puts_job_on_its_priority_queue(client, runtime, priority: str) -> None:
    body = sample_request() | {"priority": priority}
    job_id = client.post(URL, json=body, headers=auth()).json["job_id"]
    assert runtime.redis.lrange(f"rq:queue:{priority}", 0, -1) == [job_id.encode()]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"code": None}, "code", "must be a string"),
        ({"code": ""}, "code", "must not be empty"),
        ({"productId": 5}, "productId", "must be a string"),
        ({"priority": "urgent"}, "priority", "must be one of"),
        ({"data": [1, 2]}, "data", "must be a JSON object"),
        ({"runAt": "2026-01-15T10:30:00"}, "runAt", "time zone"),
        ({"runAt": "tomorrow"}, "runAt", "date-time"),
        ({"callbackUrl": "https://x"}, "callbackUrl", "is not a field"),
    ],
)
def test_submit_names_each_bad_field(client, change: dict, field: str, message: str) -> None:
    body = sample_request() | change
    response = client.post(URL, json=body, headers=auth())
    assert response.status_code == 400
    assert response.json["error"] == "validation_error"
    details = {d["field"]: d["message"] for d in response.json["details"]}
    assert field in details and message in details[field]


def test_submit_missing_required_fields_are_listed(client) -> None:
    response = client.post(URL, json={"priority": "high"}, headers=auth())
    assert response.status_code == 400
    fields = {d["field"]: d["message"] for d in response.json["details"]}
    assert fields == {"code": "is required", "productId": "is required"}


def test_submit_invalid_json_is_400(client) -> None:
    response = client.post(URL, data="{not json", headers=auth() | {"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json["error"] == "invalid_json"


def test_submit_non_object_json_is_400(client) -> None:
    response = client.post(URL, json=[1, 2], headers=auth())
    assert response.status_code == 400 and response.json["error"] == "invalid_json"


def test_submit_unknown_product_is_422(client) -> None:
    response = client.post(URL, json=sample_request() | {"productId": "noSuchReport"}, headers=auth())
    assert response.status_code == 422
    assert response.json["error"] == "unknown_product"
    assert "minatBakatUmum" in response.json["message"]


def test_submit_invalid_report_data_is_400_naming_the_field(client) -> None:
    body = sample_request()
    body["data"]["scales"][0]["score"] = 150
    response = client.post(URL, json=body, headers=auth())
    assert response.status_code == 400
    assert response.json["error"] == "invalid_data"
    assert any(d["field"].startswith("data.scales[0]") for d in response.json["details"])


def test_submit_text_no_font_can_show_is_400_naming_the_field_and_characters(client) -> None:
    body = sample_request()
    body["data"]["participant"]["name"] = "Dédé 王小明 🎉"
    body["data"]["scales"][1]["description"] = "Hebat 👍🏽"
    response = client.post(URL, json=body, headers=auth())
    assert response.status_code == 400 and response.json["error"] == "invalid_data"
    details = {d["field"]: d["message"] for d in response.json["details"]}
    assert set(details) == {"data.participant.name", "data.scales[1].description"}
    name = details["data.participant.name"]
    assert "'🎉' (U+1F389, PARTY POPPER)" in name and "王" not in name
    assert "U+1F44D" in details["data.scales[1].description"] and "U+1F3FD" in details["data.scales[1].description"]


def test_submit_body_over_limit_is_413(client) -> None:
    body = sample_request()
    body["data"]["summary"] = "x" * (1024 * 1024 + 10)
    response = client.post(URL, json=body, headers=auth())
    assert response.status_code == 413
    assert response.json["error"] == "payload_too_large"


def test_submit_private_callback_is_refused(client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(callback_allowed_hosts=())
    body = sample_request() | {"callback": "http://169.254.169.254/latest/meta-data"}
    response = client.post(URL, json=body, headers=auth())
    assert response.status_code == 400
    assert response.json["error"] == "invalid_callback"
    assert response.json["details"][0]["field"] == "callback"


def test_submit_same_code_and_product_while_active_returns_first_job(client) -> None:
    first = client.post(URL, json=sample_request(), headers=auth())
    second = client.post(URL, json=sample_request(), headers=auth())
    assert first.status_code == 202 and second.status_code == 200
    assert second.json["job_id"] == first.json["job_id"]


def test_submit_same_code_by_another_client_is_a_new_job(client) -> None:
    first = client.post(URL, json=sample_request(), headers=auth(CLIENT_A))
    second = client.post(URL, json=sample_request(), headers=auth(CLIENT_B))
    assert second.status_code == 202 and second.json["job_id"] != first.json["job_id"]


def test_submit_idempotency_key_returns_same_job_and_rejects_other_body(client) -> None:
    headers = auth() | {"Idempotency-Key": "order-17"}
    first = client.post(URL, json=sample_request(), headers=headers)
    again = client.post(URL, json=sample_request(), headers=headers)
    assert again.status_code == 200 and again.json["job_id"] == first.json["job_id"]
    other = client.post(URL, json=sample_request() | {"code": "another"}, headers=headers)
    assert other.status_code == 422 and other.json["error"] == "idempotency_key_reused"


def test_submit_over_max_queue_size_is_503_and_writes_nothing(client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(max_queue_size=3)
    for index in range(3):
        assert client.post(URL, json=sample_request() | {"code": f"c{index}"}, headers=auth()).status_code == 202
    response = client.post(URL, json=sample_request() | {"code": "c-full"}, headers=auth())
    assert response.status_code == 503
    assert response.json["error"] == "queue_full"
    assert int(response.headers["Retry-After"]) > 0
    with runtime.session() as session:
        assert len(job_store.list_jobs(session, client_name=None, limit=100)) == 3


def test_submit_while_redis_is_down_is_accepted_and_recorded(client, runtime) -> None:
    runtime.redis = unreachable_redis(runtime.settings)
    response = client.post(URL, json=sample_request(), headers=auth())
    assert response.status_code == 202
    with runtime.session() as session:
        assert job_store.get_job(session, response.json["job_id"]).status == "queued"


def test_submit_with_future_run_at_is_scheduled_not_queued(client, runtime) -> None:
    run_at = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    response = client.post(URL, json=sample_request() | {"runAt": run_at}, headers=auth())
    assert response.status_code == 202 and response.json["status"] == "scheduled"
    assert runtime.redis.llen("rq:queue:normal") == 0
