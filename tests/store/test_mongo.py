"""MongoSink against mongomock, and against a real server when MONGO_TEST_URI is set.

MONGO_TEST_URI must point at a loopback server (the test guard refuses other addresses), for example
`MONGO_TEST_URI=mongodb://127.0.0.1:27017/`. Each test uses a fresh database that is dropped after.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import mongomock
import pymongo
import pytest
from bson import Decimal128, ObjectId
from pymongo.errors import AutoReconnect, OperationFailure, ServerSelectionTimeoutError

from config.settings import Settings
from store.mongo import (
    MongoDocumentMissingError,
    MongoOperationError,
    MongoSink,
    MongoUnavailableError,
    build_mongo_sink,
)

MONGO_TEST_URI = os.environ.get("MONGO_TEST_URI")
CODE, PRODUCT = "rb5YrWGWJXOHoj6r", "minatBakatUmum"
T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
LINK = "https://drive.google.com/file/d/file1/view"


@pytest.fixture(params=["mongomock", "real"])
def collection(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "mongomock":
        yield mongomock.MongoClient(tz_aware=True)["workflow"]["psikotes_v2"]
        return
    if not MONGO_TEST_URI:
        pytest.skip("set MONGO_TEST_URI=mongodb://127.0.0.1:27017/ to run against a real MongoDB")
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(MONGO_TEST_URI, serverSelectionTimeoutMS=3000, tz_aware=True)
    name = f"pdfjobs_test_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]["psikotes_v2"]
    finally:
        client.drop_database(name)
        client.close()


@pytest.fixture
def sink(collection: Any) -> MongoSink:
    return MongoSink(collection)


def insert(collection: Any, **extra: Any) -> Any:
    document = {"code": CODE, "product_id": PRODUCT, "name": "Budi", "scores": {"R": 7, "I": 5}, **extra}
    return collection.insert_one(document).inserted_id


def record_of(collection: Any) -> dict[str, Any]:
    return collection.find_one({"code": CODE, "product_id": PRODUCT})["pdf_generation"]


def test_mongo_fetch_returns_document_without_id_and_record(collection: Any, sink: MongoSink) -> None:
    insert(collection, pdf_generation={"status": "failed"})

    assert sink.fetch_report_data(CODE, PRODUCT) == {
        "code": CODE,
        "product_id": PRODUCT,
        "name": "Budi",
        "scores": {"R": 7, "I": 5},
    }


def test_mongo_fetch_missing_document_is_permanent_and_clear(collection: Any, sink: MongoSink) -> None:
    insert(collection)

    with pytest.raises(MongoDocumentMissingError) as caught:
        sink.fetch_report_data(CODE, "otherProduct")

    message = str(caught.value)
    assert f"code={CODE!r}" in message
    assert "product_id='otherProduct'" in message
    assert "psikotes_v2" in message


def test_mongo_fetch_uses_data_field_and_configured_names(collection: Any) -> None:
    collection.insert_one({"kode": CODE, "produk": PRODUCT, "results": {"report": {"scores": [1, 2]}}})
    sink = MongoSink(collection, code_field="kode", product_field="produk", data_field="results.report")

    assert sink.fetch_report_data(CODE, PRODUCT) == {"scores": [1, 2]}


def test_mongo_fetch_missing_data_field_names_setting(collection: Any) -> None:
    insert(collection)
    sink = MongoSink(collection, data_field="results")

    with pytest.raises(MongoDocumentMissingError, match="no object field 'results' \\(MONGO_DATA_FIELD\\)"):
        sink.fetch_report_data(CODE, PRODUCT)


def test_mongo_fetch_returns_json_compatible_values(collection: Any, sink: MongoSink) -> None:
    ref = ObjectId()
    insert(collection, taken_at=T0, ref=ref, score=Decimal128("12.5"), count=Decimal128("3"))

    data = sink.fetch_report_data(CODE, PRODUCT)

    assert data["taken_at"] == "2026-01-15T10:30:00Z"
    assert data["ref"] == str(ref)
    assert data["score"] == 12.5
    assert data["count"] == 3


def test_mongo_record_completed_sets_pdf_generation(collection: Any, sink: MongoSink) -> None:
    insert(collection)

    assert sink.record_outcome(CODE, PRODUCT, status="completed", job_id="job-1", google_drive_link=LINK,
                               completed_at=T0)

    assert record_of(collection) == {
        "status": "completed",
        "google_drive_link": LINK,
        "job_id": "job-1",
        "completed_at": T0,
        "error_message": None,
    }
    assert collection.find_one({"code": CODE})["name"] == "Budi"  # the rest of the document is untouched


def test_mongo_record_failed_sets_failed_at_and_message(collection: Any, sink: MongoSink) -> None:
    insert(collection)

    assert sink.record_outcome(CODE, PRODUCT, status="failed", job_id="job-1", failed_at=T0,
                               error_message="template minatBakatUmum: missing field scores.R")

    assert record_of(collection) == {
        "status": "failed",
        "google_drive_link": None,
        "job_id": "job-1",
        "failed_at": T0,
        "error_message": "template minatBakatUmum: missing field scores.R",
    }


def test_mongo_record_failed_then_completed_replaces_whole_record(collection: Any, sink: MongoSink) -> None:
    insert(collection)
    sink.record_outcome(CODE, PRODUCT, status="failed", job_id="job-1", failed_at=T0, error_message="boom")

    sink.record_outcome(CODE, PRODUCT, status="completed", job_id="job-1", google_drive_link=LINK,
                        completed_at=T0 + timedelta(minutes=5))

    assert record_of(collection)["status"] == "completed"
    assert "failed_at" not in record_of(collection)
    assert record_of(collection)["error_message"] is None


def test_mongo_record_without_document_returns_false_and_creates_nothing(collection: Any, sink: MongoSink) -> None:
    assert not sink.record_outcome(CODE, PRODUCT, status="completed", job_id="job-1", completed_at=T0)
    assert collection.count_documents({}) == 0


def test_mongo_record_older_job_does_not_clobber_newer(collection: Any, sink: MongoSink) -> None:
    insert(collection)
    sink.record_outcome(CODE, PRODUCT, status="completed", job_id="job-new", google_drive_link=LINK,
                        completed_at=T0 + timedelta(hours=1))

    written = sink.record_outcome(CODE, PRODUCT, status="failed", job_id="job-old", failed_at=T0,
                                  error_message="late retry of an old failure")

    assert not written
    assert record_of(collection)["job_id"] == "job-new"


def test_mongo_record_same_outcome_twice_is_idempotent(collection: Any, sink: MongoSink) -> None:
    insert(collection)

    for _ in range(2):
        assert sink.record_outcome(CODE, PRODUCT, status="completed", job_id="job-1", completed_at=T0)

    assert record_of(collection)["job_id"] == "job-1"


def test_mongo_record_replaces_legacy_record_without_dates(collection: Any, sink: MongoSink) -> None:
    insert(collection, pdf_generation={"status": "processing", "completed_at": "2025-01-01T00:00:00Z"})

    assert sink.record_outcome(CODE, PRODUCT, status="completed", job_id="job-1", completed_at=T0)
    assert record_of(collection)["job_id"] == "job-1"


def test_mongo_record_rejects_unknown_status(sink: MongoSink) -> None:
    with pytest.raises(ValueError, match="status must be"):
        sink.record_outcome(CODE, PRODUCT, status="done", job_id="job-1")


class FlakyCollection:
    """Wraps a collection: the first `failures` calls of each method raise `error`, then it works."""

    def __init__(self, inner: Any, failures: int, error: Exception):
        self.inner, self.failures, self.error = inner, failures, error
        self.full_name = inner.full_name
        self.writes = 0

    def update_one(self, *args: Any, **kwargs: Any) -> Any:
        self._maybe_fail()
        result = self.inner.update_one(*args, **kwargs)
        self.writes += result.modified_count
        return result

    def find_one(self, *args: Any, **kwargs: Any) -> Any:
        self._maybe_fail()
        return self.inner.find_one(*args, **kwargs)

    def _maybe_fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise self.error


def test_mongo_record_outage_raises_unavailable_then_lands_once(collection: Any) -> None:
    insert(collection)
    flaky = FlakyCollection(collection, failures=2, error=AutoReconnect("connection reset by peer"))
    sink = MongoSink(flaky)
    outcome = {"status": "completed", "job_id": "job-1", "google_drive_link": LINK, "completed_at": T0}

    for _ in range(2):
        with pytest.raises(MongoUnavailableError, match="recording the PDF outcome.*AutoReconnect"):
            sink.record_outcome(CODE, PRODUCT, **outcome)
        assert "pdf_generation" not in collection.find_one({"code": CODE})
    assert sink.record_outcome(CODE, PRODUCT, **outcome)
    assert sink.record_outcome(CODE, PRODUCT, **outcome)  # a duplicate retry changes nothing

    assert flaky.writes == 1
    assert record_of(collection)["completed_at"] == T0


def test_mongo_fetch_outage_raises_unavailable(collection: Any) -> None:
    sink = MongoSink(FlakyCollection(collection, failures=1, error=ServerSelectionTimeoutError("no servers")))

    with pytest.raises(MongoUnavailableError, match=f"reading report data for code={CODE!r}"):
        sink.fetch_report_data(CODE, PRODUCT)


@pytest.mark.parametrize(
    ("labels", "expected"), [((), MongoOperationError), (("RetryableWriteError",), MongoUnavailableError)]
)
def test_mongo_operation_failure_is_classified_by_label(
    collection: Any, labels: tuple[str, ...], expected: type[Exception]
) -> None:
    error = OperationFailure("not authorized on workflow", code=13, details={"errorLabels": list(labels)})
    sink = MongoSink(FlakyCollection(collection, failures=1, error=error))

    with pytest.raises(expected):
        sink.record_outcome(CODE, PRODUCT, status="completed", job_id="job-1")


def test_build_mongo_sink_is_none_without_uri() -> None:
    assert build_mongo_sink(Settings()) is None


def test_build_mongo_sink_connects_lazily_and_reports_outage() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    uri = f"mongodb://127.0.0.1:{closed_port}/"
    settings = Settings(mongo_uri=uri, mongo_database="wf", mongo_collection="results")

    sink = build_mongo_sink(settings)  # no server there: construction must not notice
    assert sink is not None and sink.where == "wf.results"
    try:
        with pytest.raises(MongoUnavailableError, match="ServerSelectionTimeoutError"):
            sink.fetch_report_data(CODE, PRODUCT)
    finally:
        sink.close()
