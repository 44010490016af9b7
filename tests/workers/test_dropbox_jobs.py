"""Jobs stored in Dropbox, end to end in-process: API submit, worker, the fake Dropbox API on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from config import Settings
from jobs.retention import purge_expired_pdfs
from jobs.runtime import Runtime
from storage import build_storage
from storage.retrying import Backoff
from storage.staging import staging_area
from store import jobs as job_store
from tests.conftest import auth, run_jobs, sample_request
from tests.storage.dropbox_server import FakeDropbox, serve_fake_dropbox
from tests.workers.conftest import (
    CountingTemplates,
    age_completed_job,
    expect_completed_after_one_render,
    expect_upload_retry,
    status,
    submit,
)
from tests.workers.test_drive_jobs import requeue_retry
from workers.pdf_job import pdf_filename

pytestmark = pytest.mark.sqlite_only  # not about SQL: SQLite only (tests/conftest.py)

UPLOAD_ATTEMPTS = 3  # the storage's own retry budget per job attempt


@pytest.fixture
def fake() -> Iterator[FakeDropbox]:
    """The fake Dropbox API and token endpoint on 127.0.0.1 (tests/storage/dropbox_server.py)."""
    with serve_fake_dropbox() as served:
        yield served


@pytest.fixture
def settings(settings: Settings, fake: FakeDropbox) -> Settings:
    """STORAGE_BACKEND=dropbox with the fake's app credentials and refresh token."""
    return settings.with_changes(
        storage_backend="dropbox", dropbox_app_key=fake.app_key, dropbox_app_secret=fake.app_secret,
        dropbox_refresh_token=fake.refresh_token, dropbox_folder="/Reports", dropbox_api_endpoint=fake.base_url,
    )


@pytest.fixture
def templates(runtime: Runtime) -> CountingTemplates:
    """Count renders; the storage is built from the settings, without waits between tries."""
    counting = CountingTemplates()
    runtime.overrides["templates"] = counting
    runtime.overrides["storage"] = build_storage(
        runtime.settings, backoff=Backoff(attempts=UPLOAD_ATTEMPTS, base=0.0, cap=0.0))
    return counting


def test_dropbox_job_uploads_records_link_and_downloads_through_the_redirect(client, runtime, fake,
                                                                             templates) -> None:
    job_id = submit(client, sample_request())
    run_jobs(runtime)

    body = status(client, job_id)
    assert body["status"] == "completed", body
    (path, stored), = fake.files.items()
    assert body["google_drive_link"] == fake.links[path] and body["file_size"] == len(stored["data"])
    with runtime.session() as session:
        row = job_store.get_job(session, job_id)
    assert (row.storage_backend, row.file_path) == ("dropbox", f"/Reports/{pdf_filename(row)[:-4]}_{job_id}.pdf")
    assert stored["path_display"] == row.file_path and row.google_drive_link == fake.links[path]
    assert [call.arg["refresh_token"] for call in fake.calls("token")] == [fake.refresh_token]

    download = client.get(f"/api/jobs/{job_id}/download", headers=auth())
    assert download.status_code == 302
    assert download.headers["Location"] == row.google_drive_link.replace("dl=0", "dl=1")
    fetched = requests.get(download.headers["Location"], timeout=10)  # the shared link, on the fake
    assert fetched.status_code == 200 and fetched.headers["Content-Type"] == "application/pdf"
    assert fetched.content == stored["data"] and fetched.content.startswith(b"%PDF-")
    assert templates.renders == [sample_request()["code"]]
    assert not staging_area(runtime.settings.data_dir).path(job_id).exists()


def test_dropbox_rate_limit_is_retried_within_the_attempt(client, runtime, fake, templates) -> None:
    fake.fail("upload", 429, 503)
    job_id = submit(client, sample_request())
    run_jobs(runtime)

    body = status(client, job_id)
    assert body["status"] == "completed" and body["retry_count"] == 0, body
    assert len(fake.calls("upload")) == 3 and len(fake.files) == 1


def test_dropbox_outage_retries_only_the_upload(client, runtime, fake, templates) -> None:
    fake.fail("upload", *[500] * UPLOAD_ATTEMPTS)  # longer than one attempt's own retries
    job_id = submit(client, sample_request())
    run_jobs(runtime)

    kept = expect_upload_retry(client, runtime, job_id, "upload to Dropbox")
    error = status(client, job_id)["error"]
    assert error.startswith("upload to Dropbox failed: Dropbox upload of ") and "HTTP 500" in error
    assert fake.files == {}

    requeue_retry(runtime, job_id)  # Dropbox is back
    run_jobs(runtime)

    body = expect_completed_after_one_render(client, runtime, templates, job_id)  # uploaded on the retry
    (stored,) = fake.files.values()
    assert stored["data"] == kept and body["google_drive_link"] == next(iter(fake.links.values()))
    assert len(fake.calls("upload")) == UPLOAD_ATTEMPTS + 1


def test_dropbox_account_full_fails_at_once(client, runtime, fake, templates) -> None:
    fake.quota = 100  # bytes: no report fits
    job_id = submit(client, sample_request())
    run_jobs(runtime)

    body = status(client, job_id)
    assert body["status"] == "failed" and body["retry_count"] == 0, body
    assert body["error"].startswith("upload to Dropbox failed: ") and "path/insufficient_space" in body["error"]
    assert "out of space" in body["error"]
    assert len(fake.calls("upload")) == 1 and len(templates.renders) == 1
    assert not staging_area(runtime.settings.data_dir).path(job_id).exists()


def test_retention_deletes_the_dropbox_file(client, runtime, fake, templates) -> None:
    old = submit(client, sample_request())
    new = submit(client, sample_request() | {"code": "fresh"})
    run_jobs(runtime)
    age_completed_job(runtime, old)
    with runtime.session() as session:
        old_path, new_path = (job_store.get_job(session, job_id).file_path for job_id in (old, new))

    assert purge_expired_pdfs(runtime) == 1

    assert [call.arg["path"] for call in fake.calls("delete")] == [old_path]
    assert list(fake.files) == [new_path.lower()]
    gone = client.get(f"/api/jobs/{old}/download", headers=auth())
    assert gone.status_code == 410 and "retention" in gone.json["message"]
    assert client.get(f"/api/jobs/{new}/download", headers=auth()).status_code == 302
    assert purge_expired_pdfs(runtime) == 0
