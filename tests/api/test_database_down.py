"""The SQL database unreachable: every endpoint that needs it answers 503 + Retry-After, never 500.

Runs on SQLite (a database file that cannot be opened) and on PostgreSQL (a port where no server
listens): the driver's real connection errors, as SQLAlchemy raises them.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from jobs.runtime import Runtime
from store.db import make_session_factory
from tests.conftest import auth, sample_request, take_database_down

SUBMIT = "/api/reports/generate-async"


@pytest.fixture
def job_id(client) -> str:  # noqa: ANN001
    """A job accepted while the database was up."""
    response = client.post(SUBMIT, json=sample_request(), headers=auth())
    assert response.status_code == 202
    return response.json["job_id"]


def _assert_database_unavailable(response) -> None:  # noqa: ANN001
    assert response.status_code == 503, response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0
    assert response.json["error"] == "database_unavailable"
    assert "database cannot be reached" in response.json["message"] and response.json["details"] == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", SUBMIT, sample_request("minatBakatUmum") | {"code": "another-code"}),
        ("post", "/api/reports/generate", sample_request("minatBakatUmum") | {"code": "sync-code"}),
        ("get", "/api/jobs/{job_id}", None),
        ("get", "/api/jobs/{job_id}/download", None),
        ("get", "/api/jobs/{job_id}/events", None),
        ("get", "/api/jobs", None),
        ("post", "/api/jobs/{job_id}/cancel", None),
        ("post", "/api/jobs/{job_id}/retry", None),
        ("post", "/api/jobs/{job_id}/callbacks/redeliver", None),
        ("get", "/api/queue/stats", None),
    ],
)
def test_endpoint_answers_503_with_retry_after_while_the_database_is_down(
    client, runtime: Runtime, job_id: str, method: str, path: str, body: dict | None  # noqa: ANN001
) -> None:
    take_database_down(runtime)
    response = getattr(client, method)(path.format(job_id=job_id), json=body, headers=auth())
    _assert_database_unavailable(response)


def test_metrics_scrape_says_sql_is_down_and_still_gives_the_redis_figures(client, runtime: Runtime) -> None:  # noqa: ANN001
    take_database_down(runtime)
    response = client.get("/metrics", headers=auth())
    assert response.status_code == 200  # a scrape reports the outage rather than failing
    assert "pdfjobs_sql_up 0.0" in response.text and "pdfjobs_redis_up 1.0" in response.text


def test_readyz_is_503_naming_sql_while_the_database_is_down(client, runtime: Runtime) -> None:  # noqa: ANN001
    assert client.get("/readyz").status_code == 200
    take_database_down(runtime)
    response = client.get("/readyz")
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    assert response.json["checks"]["redis"] == "ok"
    assert response.json["checks"]["sql"].startswith("unavailable: OperationalError")


def test_the_log_says_why_without_the_request_data(client, runtime: Runtime, caplog) -> None:  # noqa: ANN001
    take_database_down(runtime)
    secret = "participant-name-that-must-not-be-logged"
    body = sample_request() | {"code": "logged-code"}
    body["data"]["name"] = secret
    _assert_database_unavailable(client.post(SUBMIT, json=body, headers=auth()))
    lines = [record.getMessage() for record in caplog.records if "database_unavailable" in record.getMessage()]
    assert lines and "reason=" in lines[0]
    assert secret not in caplog.text and auth()["Authorization"].split()[1] not in caplog.text


def test_every_pooled_connection_busy_past_the_pool_timeout_is_503(client, runtime: Runtime, job_id: str) -> None:  # noqa: ANN001
    # A database that hangs keeps each connection busy: the pool's wait for a free one ends in its TimeoutError.
    runtime.engine.dispose()
    runtime.engine = create_engine(runtime.engine.url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    runtime.session_factory = make_session_factory(runtime.engine)
    with runtime.engine.connect():  # the only connection, held
        _assert_database_unavailable(client.get(f"/api/jobs/{job_id}", headers=auth()))
    assert client.get(f"/api/jobs/{job_id}", headers=auth()).status_code == 200  # free again
    runtime.engine.dispose()
