"""MongoDB as data source and permanent record, through the job (a real MongoSink over mongomock)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import pytest
from pypdf import PdfReader

from config import Settings
from jobs.mongo_relay import pending_records, relay_mongo_records
from jobs.runtime import Runtime
from store import jobs as job_store
from store.mongo import MongoSink
from tests.conftest import auth, run_jobs, sample_request
from tests.workers.conftest import FlakyCollection, form_fields, status, submit
from workers.scheduler import host_tasks, shared_tasks

FORM = "formulirPersetujuan"
CODE = "mg7Q2kZx9LwT4sAb"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """MONGO_URI set (the sink itself is injected, so nothing connects to it)."""
    return settings.with_changes(mongo_uri="mongodb://127.0.0.1:27017/")


@pytest.fixture
def collection(runtime: Runtime) -> FlakyCollection:
    """workflow.psikotes_v2 in mongomock, behind the runtime's real MongoSink."""
    flaky = FlakyCollection()
    runtime.overrides["mongo"] = MongoSink(flaky)
    return flaky


def insert_form_document(collection: FlakyCollection, **extra: Any) -> None:
    document = {"code": CODE, "product_id": FORM, **sample_request(FORM)["data"], **extra}
    collection.insert_one(document)


def no_data_request(product_id: str = FORM) -> dict[str, Any]:
    return {"code": CODE, "productId": product_id}


def document(collection: FlakyCollection) -> dict[str, Any]:
    return collection.find_one({"code": CODE, "product_id": FORM})


def job_row(runtime: Runtime, job_id: str) -> Any:
    with runtime.session() as session:
        return job_store.get_job(session, job_id)


def test_mongo_job_without_data_renders_the_document(client, runtime, collection) -> None:
    insert_form_document(collection)
    job_id = submit(client, no_data_request())
    run_jobs(runtime)

    assert status(client, job_id)["status"] == "completed"
    pdf = client.get(f"/api/jobs/{job_id}/download", headers=auth()).data
    participant = sample_request(FORM)["data"]["participant"]
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert participant["name"] in text and participant["school"] in text and "12/01/2026" in text
    assert form_fields(pdf) == {}


def test_mongo_completion_is_recorded_on_the_document(client, runtime, collection) -> None:
    insert_form_document(collection)
    job_id = submit(client, no_data_request())
    run_jobs(runtime)

    row = job_row(runtime, job_id)
    record = document(collection)["pdf_generation"]
    assert record == {
        "status": "completed",
        "google_drive_link": None,
        "job_id": job_id,
        "completed_at": record["completed_at"],
        "error_message": None,
    }
    assert isinstance(record["completed_at"], datetime)
    assert abs(record["completed_at"] - row.completed_at) < timedelta(milliseconds=1)
    assert row.mongo_status == "done" and collection.landed_writes == 1


def test_mongo_missing_document_fails_at_once_with_message(client, runtime, collection) -> None:
    job_id = submit(client, no_data_request())
    run_jobs(runtime)

    body = status(client, job_id)
    assert body["status"] == "failed" and body["retry_count"] == 0, body
    assert body["error"] == (
        f"no report data: workflow.psikotes_v2 has no document with code={CODE!r} and "
        f"product_id={FORM!r}; send the data inline or create the document"
    )
    assert job_row(runtime, job_id).mongo_status == "done"  # nothing to record on: not retried forever


def test_mongo_final_failure_is_recorded_on_the_document(client, runtime, collection) -> None:
    insert_form_document(collection, participant={"school": "SMA 1"})  # the required name is missing
    job_id = submit(client, no_data_request())
    run_jobs(runtime)

    body = status(client, job_id)
    assert body["status"] == "failed" and body["retry_count"] == 0, body
    record = document(collection)["pdf_generation"]
    assert record["status"] == "failed" and record["job_id"] == job_id and record["google_drive_link"] is None
    assert record["error_message"] == body["error"] and "data.participant.name: is required" in body["error"]
    assert isinstance(record["failed_at"], datetime) and "completed_at" not in record


def test_mongo_outage_record_lands_once_through_the_relay(client, runtime, collection) -> None:
    insert_form_document(collection)
    collection.writes_down = True
    job_id = submit(client, no_data_request())
    run_jobs(runtime)

    assert status(client, job_id)["status"] == "completed"  # the SQL result does not wait for MongoDB
    assert job_row(runtime, job_id).mongo_status == "pending" and "pdf_generation" not in document(collection)
    assert relay_mongo_records(runtime) == 0 and collection.failed_writes == 1  # the worker's own try is recent
    later = datetime.now().astimezone() + timedelta(minutes=1)
    assert relay_mongo_records(runtime, now=later) == 0  # still down: stays pending
    assert collection.failed_writes == 2 and job_row(runtime, job_id).mongo_status == "pending"

    collection.writes_down = False
    assert relay_mongo_records(runtime, now=later) == 1
    assert relay_mongo_records(runtime, now=later) == 0

    record = document(collection)["pdf_generation"]
    assert record["status"] == "completed" and record["job_id"] == job_id
    assert collection.landed_writes == 1 and job_row(runtime, job_id).mongo_status == "done"


def test_mongo_relay_stops_at_the_first_failure_and_takes_batches(client, runtime, collection) -> None:
    collection.writes_down = True
    job_ids = []
    for index in range(3):
        code = f"{CODE}{index}"
        collection.insert_one({"code": code, "product_id": FORM, **sample_request(FORM)["data"]})
        job_ids.append(submit(client, {"code": code, "productId": FORM}))
    run_jobs(runtime)
    later = datetime.now().astimezone() + timedelta(minutes=1)
    assert len(pending_records(runtime, now=later)) == 3 and collection.failed_writes == 3

    assert relay_mongo_records(runtime, now=later) == 0 and collection.failed_writes == 4
    collection.writes_down = False
    assert relay_mongo_records(runtime, now=later, batch_size=2) == 2
    assert relay_mongo_records(runtime, now=later, batch_size=2) == 1
    assert collection.landed_writes == 3
    assert {job_row(runtime, job_id).mongo_status for job_id in job_ids} == {"done"}


def test_mongo_relay_and_staging_sweep_run_in_the_scheduler(settings) -> None:
    assert "mongo_relay" in [task.name for task in shared_tasks(settings)]  # the leader's
    assert "staging_sweep" in [task.name for task in host_tasks()]  # every scheduler's (its host's files)


def test_submit_without_data_needs_mongo_uri(client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(mongo_uri=None)

    response = client.post("/api/reports/generate-async", json=no_data_request(), headers=auth())

    assert response.status_code == 400 and response.json["error"] == "data_required"
    assert response.json["message"].startswith("data is required unless MONGO_URI is configured")
    assert response.json["details"][0]["field"] == "data"


def test_submit_without_data_is_accepted_with_mongo_uri(client, collection) -> None:
    response = client.post("/api/reports/generate-async", json=no_data_request("minatBakatUmum"), headers=auth())

    assert response.status_code == 202
