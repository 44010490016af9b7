"""Jobs stored in Google Drive, end to end in-process: API submit, worker, fake Drive on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from rq import Queue

from config import Settings
from jobs.runtime import Runtime
from storage import build_storage
from storage.retrying import Backoff
from storage.staging import staging_area
from store import jobs as job_store
from tests.conftest import auth, run_jobs, sample_request
from tests.storage.drive_server import ACCESS_TOKEN, FakeDrive
from tests.storage.test_gdrive import write_service_account
from tests.workers.conftest import (
    CountingTemplates,
    expect_completed_after_one_render,
    expect_upload_retry,
    status,
    submit,
)
from workers.pdf_job import pdf_filename

pytestmark = pytest.mark.sqlite_only  # not about SQL: SQLite only (tests/conftest.py)

UPLOAD_ATTEMPTS = 3  # the storage's own retry budget per job attempt


@pytest.fixture
def settings(settings: Settings, drive: FakeDrive, tmp_path: Path) -> Settings:
    """STORAGE_BACKEND=gdrive with a service-account key whose token_uri is the fake's."""
    key_file = tmp_path / "service-account.json"
    drive.public_key = write_service_account(key_file, f"{drive.base_url}/token").public_key()
    drive.require_token = True
    return settings.with_changes(
        storage_backend="gdrive",
        google_drive_credentials_file=key_file,
        google_drive_folder_id=drive.folder_id,
        google_drive_api_endpoint=drive.base_url,
        google_drive_share_with="group:hr@example.com",
    )


@pytest.fixture
def templates(runtime: Runtime) -> CountingTemplates:
    """Count renders; the storage is built from the settings, with instant backoff between tries."""
    counting = CountingTemplates()
    runtime.overrides["templates"] = counting
    runtime.overrides["storage"] = build_storage(runtime.settings, backoff=Backoff(attempts=UPLOAD_ATTEMPTS, base=0.0))
    return counting


def requeue_retry(runtime: Runtime, job_id: str) -> None:
    """Hand a job RQ scheduled for a delayed retry back to its queue now (what the scheduler does when due)."""
    Queue("normal", connection=runtime.redis).scheduled_job_registry.requeue(job_id)


def test_drive_job_uploads_records_link_and_download_redirects(client, runtime, drive, templates) -> None:
    job_id = submit(client, sample_request())
    run_jobs(runtime)

    body = status(client, job_id)
    assert body["status"] == "completed", body
    (stored,) = drive.files.values()
    assert body["google_drive_link"] == stored["webViewLink"]
    assert stored["media"].startswith(b"%PDF-") and body["file_size"] == len(stored["media"])
    with runtime.session() as session:
        row = job_store.get_job(session, job_id)
    assert (row.storage_backend, row.file_path) == ("gdrive", stored["id"])
    assert row.google_drive_link == stored["webViewLink"]
    assert stored["metadata"]["name"] == pdf_filename(row) and stored["metadata"]["parents"] == [drive.folder_id]
    assert drive.permissions[stored["id"]] == [{"type": "group", "role": "reader", "emailAddress": "hr@example.com"}]
    assert all(call.headers["authorization"] == f"Bearer {ACCESS_TOKEN}" for call in drive.calls("upload"))
    download = client.get(f"/api/jobs/{job_id}/download", headers=auth())
    assert download.status_code == 302 and download.headers["Location"] == stored["webViewLink"]
    assert templates.renders == [sample_request()["code"]]
    assert not staging_area(runtime.settings.data_dir).path(job_id).exists()


def test_drive_outage_retries_only_the_upload(client, runtime, drive, templates) -> None:
    drive.fail("upload", *[500] * UPLOAD_ATTEMPTS)  # longer than one attempt's own retries
    job_id = submit(client, sample_request())
    run_jobs(runtime)

    expect_upload_retry(client, runtime, job_id, "upload to Google Drive")
    error = status(client, job_id)["error"]
    assert error.startswith("upload to Google Drive failed: Google Drive upload of") and "HTTP 500" in error
    assert drive.files == {}

    requeue_retry(runtime, job_id)  # Drive is back
    run_jobs(runtime)

    body = expect_completed_after_one_render(client, runtime, templates, job_id)  # uploaded on the retry
    (stored,) = drive.files.values()
    assert body["google_drive_link"] == stored["webViewLink"]
    assert len(drive.calls("upload")) == UPLOAD_ATTEMPTS + 1


def test_drive_outage_past_every_retry_fails_without_rendering_again(client, runtime, drive, templates) -> None:
    runtime.settings = runtime.settings.with_changes(job_retry_delays=(0,))  # one immediate retry
    drive.fail("upload", *[500] * (2 * UPLOAD_ATTEMPTS))
    job_id = submit(client, sample_request())
    run_jobs(runtime)

    body = status(client, job_id)
    assert body["status"] == "failed" and body["retry_count"] == 1, body
    assert body["error"].startswith("upload to Google Drive failed: ") and "will retry" not in body["error"]
    assert len(templates.renders) == 1 and drive.files == {}
    assert not staging_area(runtime.settings.data_dir).path(job_id).exists()


def test_drive_permission_error_fails_at_once(client, runtime, drive, templates) -> None:
    drive.fail("upload", 403, reason="insufficientFilePermissions")
    job_id = submit(client, sample_request())
    run_jobs(runtime)

    body = status(client, job_id)
    assert body["status"] == "failed" and body["retry_count"] == 0, body
    assert body["error"].startswith("upload to Google Drive failed: ") and "HTTP 403" in body["error"]
    assert "GOOGLE_DRIVE_FOLDER_ID" in body["error"]
    assert len(drive.calls("upload")) == 1 and len(templates.renders) == 1
    assert not staging_area(runtime.settings.data_dir).path(job_id).exists()
