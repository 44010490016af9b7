"""The hot job statements: the JobRecords they hand back hold exactly what SQL holds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect

from jobs.runtime import Runtime
from store import jobs as job_store
from store.models import COMPLETED, PROCESSING, QUEUED, JobRecord, utcnow

COLUMNS = [column.key for column in JobRecord.__table__.columns]


def _columns(job: JobRecord) -> dict[str, Any]:
    return {name: getattr(job, name) for name in COLUMNS}


def _stored(runtime: Runtime, job_id: str) -> dict[str, Any]:
    with runtime.session() as session:
        return _columns(job_store.get_job(session, job_id))


def _new_values(job_id: str) -> dict[str, Any]:
    """A new row as the submit builds it, minus the columns that have defaults (status, progress ...)."""
    now = utcnow()
    return {
        "job_id": job_id, "client_name": "acme", "code": f"code-{job_id}", "product_id": "minatBakatUmum",
        "request_data": {"name": "Ani", "scores": [1, 2, 3]}, "callback_url": "http://127.0.0.1:9/hook",
        "request_fingerprint": "f" * 64, "created_at": now,
    }


def test_create_job_returns_the_row_as_stored_with_column_defaults(runtime: Runtime) -> None:
    with runtime.session() as session:
        job = job_store.create_job(session, _new_values("pdf_a"))
    assert inspect(job).session is None  # detached: safe to use after the session closed
    assert _columns(job) == _stored(runtime, "pdf_a")
    assert (job.status, job.priority, job.progress, job.attempts, job.retry_count) == (QUEUED, "normal", 0, 0, 0)
    assert job.updated_at is not None and job.active_key == "acme\x1fcode-pdf_a\x1fminatBakatUmum"


def test_claim_and_final_state_return_the_row_as_stored(runtime: Runtime) -> None:
    with runtime.session() as session:
        job_store.create_job(session, _new_values("pdf_b"))
    with runtime.engine.begin() as connection:
        claimed = job_store.mark_started(connection, "pdf_b")
    assert claimed is not None and claimed.status == PROCESSING and claimed.attempts == 1
    assert _columns(claimed) == _stored(runtime, "pdf_b")
    with runtime.engine.begin() as connection:
        assert job_store.mark_started(connection, "pdf_b") is None  # claimed once only
        finished = job_store.finish_job(connection, "pdf_b", COMPLETED, file_size=123, processing_ms=45)
    assert finished is not None and (finished.status, finished.progress, finished.active_key) == (COMPLETED, 100, None)
    assert _columns(finished) == _stored(runtime, "pdf_b")
    with runtime.engine.begin() as connection:
        assert job_store.finish_job(connection, "pdf_b", COMPLETED) is None  # already final
