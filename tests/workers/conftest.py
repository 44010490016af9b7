"""Helpers for job tests: a fake Google Drive on 127.0.0.1, a render counter, a MongoDB that can go down, and the
checks of an upload-only retry."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import mongomock
import pytest
from pymongo.errors import AutoReconnect
from pypdf import PdfReader
from sqlalchemy import update

from render import load_registry
from storage.staging import staging_area
from store.models import JobRecord, utcnow
from tests.conftest import auth, sample_request
from tests.storage.drive_server import FakeDrive, serve_fake_drive


@pytest.fixture
def drive() -> Iterator[FakeDrive]:
    """A fake Drive API and token endpoint on 127.0.0.1 (tests/storage/drive_server.py)."""
    with serve_fake_drive() as fake:
        yield fake


class CountingTemplate:
    """A real template whose renders are counted."""

    def __init__(self, inner: Any, renders: list[str | None]):
        self._inner, self._renders = inner, renders

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def render(self, data: dict[str, Any], progress: Any = None, *, code: str | None = None,
               job_id: str | None = None) -> bytes:
        self._renders.append(code)
        return self._inner.render(data, progress, code=code, job_id=job_id)


class CountingTemplates:
    """The real template registry, counting renders (install as Runtime.overrides['templates'])."""

    def __init__(self) -> None:
        self._registry = load_registry(None)
        self.renders: list[str | None] = []

    def get(self, product_id: str) -> CountingTemplate:
        return CountingTemplate(self._registry.get(product_id), self.renders)

    def all(self) -> list[Any]:
        return self._registry.all()


class FlakyCollection:
    """A mongomock collection whose writes fail with AutoReconnect while `writes_down` is set."""

    def __init__(self) -> None:
        self._inner = mongomock.MongoClient(tz_aware=True)["workflow"]["psikotes_v2"]
        self.writes_down = False
        self.failed_writes = 0
        self.landed_writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def update_one(self, *args: Any, **kwargs: Any) -> Any:
        if self.writes_down:
            self.failed_writes += 1
            raise AutoReconnect("127.0.0.1:27017: [Errno 111] Connection refused (test outage)")
        result = self._inner.update_one(*args, **kwargs)
        self.landed_writes += result.modified_count
        return result


def submit(client: Any, body: dict[str, Any]) -> str:
    """Submit a job through the API and return its id."""
    response = client.post("/api/reports/generate-async", json=body, headers=auth())
    assert response.status_code == 202, response.json
    return response.json["job_id"]


def status(client: Any, job_id: str) -> dict[str, Any]:
    """GET /api/jobs/<id>."""
    response = client.get(f"/api/jobs/{job_id}", headers=auth())
    assert response.status_code == 200, response.json
    return response.json


def form_fields(pdf: bytes) -> dict[str, Any]:
    """The AcroForm field values of a PDF, read back with pypdf."""
    return {name: field.get("/V") for name, field in (PdfReader(io.BytesIO(pdf)).get_fields() or {}).items()}


def expect_upload_retry(client: Any, runtime: Any, job_id: str, step: str) -> bytes:
    """Assert the job failed in its upload only and waits for a retry that uploads the kept PDF; return that PDF."""
    body = status(client, job_id)
    assert body["status"] == "queued" and body["retry_count"] == 1, body
    assert body["error"].startswith(f"{step} failed: ") and body["error"].endswith("; will retry the upload only")
    assert body["phase"].startswith(f"{step} failed; retrying the upload only at ")
    kept = staging_area(runtime.settings.data_dir).path(job_id).read_bytes()
    assert kept.startswith(b"%PDF-")
    return kept


def expect_completed_after_one_render(client: Any, runtime: Any, templates: CountingTemplates,
                                      job_id: str) -> dict[str, Any]:
    """Assert the job completed, was rendered once and left no kept PDF; return its status."""
    body = status(client, job_id)
    assert body["status"] == "completed" and body["error"] is None, body
    assert templates.renders == [sample_request()["code"]]
    assert not staging_area(runtime.settings.data_dir).path(job_id).exists()
    return body


def age_completed_job(runtime: Any, job_id: str, days: int = 31) -> None:
    """Move a job's completion `days` into the past (retention tests)."""
    with runtime.session() as session:
        session.execute(update(JobRecord).where(JobRecord.job_id == job_id)
                        .values(completed_at=utcnow() - timedelta(days=days)))
        session.commit()
