"""POST /api/reports/generate-batch: items checked as single submits, one SQL transaction, one Redis pipeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jsonschema.exceptions import ValidationError as SchemaError
from sqlalchemy import event, func, select

from store.models import JobRecord
from tests.api.openapi_support import check_against, check_answer, document_of
from tests.conftest import auth, run_jobs, sample_request, unreachable_redis

URL = "/api/reports/generate-batch"


def item(code: str, **changes: Any) -> dict[str, Any]:
    return sample_request("formulirPersetujuan") | {"code": code} | changes


def post(client, items: list[Any], **headers: str):  # noqa: ANN001, ANN201
    return client.post(URL, json={"items": items}, headers=auth() | headers)


def job_count(runtime) -> int:  # noqa: ANN001
    with runtime.session() as session:
        return session.scalar(select(func.count()).select_from(JobRecord))


def exec_calls(redis) -> int:  # noqa: ANN001
    """MULTI/EXEC transactions the server has run (a pipeline is one)."""
    return redis.info("commandstats").get("cmdstat_exec", {}).get("calls", 0)


@pytest.mark.timeout(900)
@pytest.mark.postgresql_only
def report_item(code: str, **changes: Any) -> dict[str, Any]:
    """A batch item of the built-in report (a render costs a third of a form fill: 997 of them run below)."""
    return sample_request() | {"code": code} | changes


def test_batch_of_1000_with_3_invalid_items_makes_997_jobs_that_complete(app, client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(max_queue_size=2000)
    items: list[Any] = [report_item(f"batch-{n}") for n in range(1000)]
    items[10] = report_item("")
    items[500] = report_item("batch-500", data={"participant": {"birth_date": "2008-03-14"}})
    items[999] = report_item("batch-999", productId="noSuchReport")
    inserts: list[bool] = []

    def count_inserts(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if statement.startswith("INSERT INTO pdf_job_results"):
            inserts.append(executemany)

    event.listen(runtime.engine, "before_cursor_execute", count_inserts)
    transactions = exec_calls(runtime.redis)
    response = post(client, items)
    event.remove(runtime.engine, "before_cursor_execute", count_inserts)
    body = check_answer(document_of(app), response, URL, "post")
    assert (body["accepted"], body["rejected"]) == (997, 3)
    assert inserts == [True]  # every row in one executemany, in one transaction
    assert exec_calls(runtime.redis) - transactions == 1  # every RQ job in one MULTI/EXEC pipeline
    rejected = {entry["index"]: entry for entry in body["items"] if entry["result"] == "rejected"}
    assert set(rejected) == {10, 500, 999}
    assert (rejected[10]["status_code"], rejected[10]["details"][0]["field"]) == (400, "code")
    assert rejected[500]["status_code"] == 400 and {d["field"] for d in rejected[500]["details"]} >= {
        "data.participant.name", "data.scales"}
    assert (rejected[999]["status_code"], rejected[999]["error"]) == (422, "unknown_product")
    accepted = [entry for entry in body["items"] if entry["result"] == "accepted"]
    assert [entry["index"] for entry in body["items"]] == list(range(1000))
    assert {entry["status_code"] for entry in accepted} == {202}
    assert [entry["position_in_queue"] for entry in accepted] == list(range(997))
    assert runtime.redis.llen("rq:queue:normal") == 997 and job_count(runtime) == 997
    run_jobs(runtime)
    with runtime.session() as session:
        states = dict(session.execute(select(JobRecord.status, func.count()).group_by(JobRecord.status)).all())
    assert states == {"completed": 997}


def test_batch_items_get_earlier_jobs_as_single_submits_do(client, runtime) -> None:
    active = client.post("/api/reports/generate-async", json=item("busy"), headers=auth()).json["job_id"]
    keyed = post(client, [item("keyed", idempotencyKey="k-1")]).json["items"][0]["job_id"]
    body = post(client, [
        item("twice"), item("twice"), item("busy"), item("keyed", idempotencyKey="k-1"),
        item("other", idempotencyKey="k-1"), item("fresh", idempotencyKey="k-2"), item("fresh2", idempotencyKey="k-2"),
    ]).json
    entries = body["items"]
    assert [(e["result"], e["status_code"]) for e in entries] == [
        ("accepted", 202), ("accepted", 200), ("accepted", 200), ("accepted", 200), ("rejected", 422),
        ("accepted", 202), ("rejected", 422)]
    assert entries[1]["job_id"] == entries[0]["job_id"] and entries[2]["job_id"] == active
    assert entries[3]["job_id"] == keyed
    assert entries[4]["error"] == entries[6]["error"] == "idempotency_key_reused"
    assert job_count(runtime) == 4  # busy, keyed, twice, fresh


def test_batch_idempotency_key_header_replays_the_batch_item_by_item(client, runtime) -> None:
    items = [item(f"replay-{n}") for n in range(3)]
    first = post(client, items, **{"Idempotency-Key": "batch-7"}).json
    again = post(client, items, **{"Idempotency-Key": "batch-7"}).json
    assert [e["job_id"] for e in again["items"]] == [e["job_id"] for e in first["items"]]
    assert [e["status_code"] for e in first["items"]] == [202] * 3 and [e["status_code"] for e in again["items"]] == [
        200] * 3
    changed = post(client, [items[0], item("replay-1", priority="high"), items[2]], **{"Idempotency-Key": "batch-7"})
    assert [e["status_code"] for e in changed.json["items"]] == [200, 422, 200]
    assert job_count(runtime) == 3


def test_batch_backpressure_counts_every_queued_item(client, runtime) -> None:
    limit = runtime.settings.max_queue_size
    assert post(client, [item(f"fill-{n}") for n in range(limit - 20)]).status_code == 200
    refused = post(client, [item(f"over-{n}") for n in range(21)])
    assert refused.status_code == 503 and refused.json["error"] == "queue_full"
    assert int(refused.headers["Retry-After"]) > 0 and "room for 20 more jobs" in refused.json["message"]
    assert job_count(runtime) == limit - 20  # nothing of the refused batch was recorded
    run_at = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    later = [item(f"later-{n}", runAt=run_at) for n in range(20)]
    assert post(client, later).json["accepted"] == 20  # runAt jobs count toward MAX_QUEUE_SIZE too (issue 18)
    for extra in (item("one-more"), item("one-more-later", runAt=run_at)):
        assert post(client, [extra]).json["error"] == "queue_full"
    never = post(client, [item(f"never-{n}") for n in range(limit + 1)])  # no wait would make it fit
    assert never.status_code == 422 and never.json["error"] == "batch_exceeds_queue"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "items"),
    ({"items": {"code": "x"}}, "items"),
    ({"items": []}, "items"),
    ({"items": [item("a")], "callback": "http://127.0.0.1/x"}, "callback"),
    ({"items": [item(str(n)) for n in range(4)]}, "items"),
])
def test_batch_refuses_a_bad_envelope_naming_the_field(app, client, runtime, body: dict, field: str) -> None:
    runtime.settings = runtime.settings.with_changes(batch_max_items=3)
    response = client.post(URL, json=body, headers=auth())
    check_answer(document_of(app), response, URL, "post")
    assert response.status_code == 400 and [d["field"] for d in response.json["details"]] == [field]
    assert job_count(runtime) == 0


def test_batch_body_limit_is_its_own_setting(client, runtime) -> None:
    items = [item(f"big-{n}") for n in range(3)]
    size = len(json.dumps({"items": items}))
    runtime.settings = runtime.settings.with_changes(max_body_bytes=size // 3, batch_max_body_bytes=size + 100)
    assert post(client, items).status_code == 200  # larger than a single submit may be
    runtime.settings = runtime.settings.with_changes(batch_max_body_bytes=size // 2)
    response = post(client, [item(f"big2-{n}") for n in range(3)])
    assert response.status_code == 413 and "BATCH_MAX_BODY_BYTES" in response.json["message"]


def test_batch_items_that_are_not_objects_or_carry_a_bad_key_are_rejected_alone(client) -> None:
    entries = post(client, ["x", item("ok"), item("k", idempotencyKey=""), item("k2", idempotencyKey=5)]).json["items"]
    assert [e["result"] for e in entries] == ["rejected", "accepted", "rejected", "rejected"]
    assert [e["details"][0]["field"] for e in entries if e["result"] == "rejected"] == [
        "body", "idempotencyKey", "idempotencyKey"]


def test_batch_positions_follow_priority_and_tickets(client, runtime) -> None:
    entries = post(client, [item("n1"), item("h1", priority="high"), item("n2"), item("l1", priority="low")]).json
    positions = {e["job_id"]: e["position_in_queue"] for e in entries["items"]}
    ids = [e["job_id"] for e in entries["items"]]
    assert [positions[job_id] for job_id in ids] == [1, 0, 2, 3]
    status = client.get(f"/api/jobs/{ids[2]}", headers=auth()).json
    assert status["position_in_queue"] == 2  # what the status endpoint says later too


def test_batch_while_redis_is_down_is_recorded_in_sql(client, runtime) -> None:
    runtime.redis = unreachable_redis(runtime.settings)
    body = post(client, [item("down-1"), item("down-2")]).json
    assert body["accepted"] == 2 and {e["position_in_queue"] for e in body["items"]} == {None}
    with runtime.session() as session:
        assert {job.status for job in session.scalars(select(JobRecord))} == {"queued"}


def test_batch_request_schema_takes_submit_bodies_with_an_item_key(app) -> None:
    document = document_of(app)
    body = {"items": [item("a", idempotencyKey="row-2"), sample_request() | {"code": "b"}]}
    check_against(document, "BatchRequest", body)
    for bad in ({"items": []}, {"items": [item("a", colour="red")]}, {"items": [item("a")], "extra": 1}):
        with pytest.raises(SchemaError):
            check_against(document, "BatchRequest", bad)
