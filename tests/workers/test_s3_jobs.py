"""Jobs stored in S3, in-process: API submit, worker, moto's S3 server on 127.0.0.1 (its own process)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import update

from config import Settings
from jobs.retention import purge_expired_pdfs, sweep_staged
from jobs.runtime import Runtime
from ops.harness import free_port
from storage import build_storage
from storage.local import LocalDiskStorage
from storage.retrying import Backoff
from storage.s3 import S3Storage
from storage.staging import staging_area
from store import jobs as job_store
from store.models import JobRecord, utcnow
from tests.conftest import auth, run_jobs, sample_request
from tests.storage.s3_server import REGION, s3_client
from tests.workers.conftest import CountingTemplates, age_completed_job, status, submit
from tests.workers.test_drive_jobs import requeue_retry

HOST_A = "worker-a"
pytestmark = [pytest.mark.usefixtures("aws_env"), pytest.mark.sqlite_only]  # sqlite_only: not about SQL


@pytest.fixture
def settings(settings: Settings, s3_endpoint: str, s3_bucket: str) -> Settings:
    """STORAGE_BACKEND=s3 on the moto server, as host HOST_A."""
    return settings.with_changes(storage_backend="s3", s3_bucket=s3_bucket, s3_prefix="pdfs",
                                 s3_endpoint_url=s3_endpoint, s3_region=REGION, host_name=HOST_A)


@pytest.fixture
def templates(runtime: Runtime) -> CountingTemplates:
    """Count renders; the storage is built from the settings, one try per call."""
    counting = CountingTemplates()
    runtime.overrides["templates"] = counting
    runtime.storage = build_storage(runtime.settings, backoff=Backoff(attempts=1))
    return counting


def stored_object(endpoint: str, bucket: str, key: str) -> bytes:
    return s3_client(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()


def unreachable_s3(settings: Settings) -> S3Storage:
    """The same bucket behind an endpoint where nothing listens: an S3 outage."""
    return S3Storage(settings.s3_bucket or "", prefix=settings.s3_prefix, region=REGION,
                     endpoint_url=f"http://127.0.0.1:{free_port()}", backoff=Backoff(attempts=1))


def test_s3_job_records_object_and_host_and_download_streams_it(
        client, runtime, s3_endpoint, s3_bucket, templates) -> None:
    job_id = submit(client, sample_request())
    run_jobs(runtime)

    assert status(client, job_id)["status"] == "completed"
    with runtime.session() as session:
        row = job_store.get_job(session, job_id)
    assert (row.storage_backend, row.file_path, row.stored_by_host) == ("s3", f"pdfs/{job_id}.pdf", HOST_A)
    assert row.google_drive_link is None
    stored = stored_object(s3_endpoint, s3_bucket, row.file_path)
    assert stored.startswith(b"%PDF-") and row.file_size == len(stored)
    download = client.get(f"/api/jobs/{job_id}/download", headers=auth())
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert download.data == stored and download.headers["Content-Disposition"].startswith("attachment;")
    assert not staging_area(runtime.settings.data_dir).path(job_id).exists()


def test_s3_download_redirects_to_a_presigned_url_when_set(
        client, runtime, s3_endpoint, s3_bucket, templates) -> None:
    runtime.settings = runtime.settings.with_changes(s3_download="redirect")
    job_id = submit(client, sample_request())
    run_jobs(runtime)

    download = client.get(f"/api/jobs/{job_id}/download", headers=auth())

    assert download.status_code == 302
    location = download.headers["Location"]
    assert location.startswith(f"{s3_endpoint}/{s3_bucket}/pdfs/{job_id}.pdf?") and "X-Amz-Expires=300" in location
    fetched = requests.get(location, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == stored_object(s3_endpoint, s3_bucket, f"pdfs/{job_id}.pdf")


def test_s3_download_of_a_missing_object_is_410_and_an_outage_503(
        client, runtime, s3_endpoint, s3_bucket, templates) -> None:
    job_id = submit(client, sample_request())
    run_jobs(runtime)

    runtime.storage = unreachable_s3(runtime.settings)
    down = client.get(f"/api/jobs/{job_id}/download", headers=auth())
    assert down.status_code == 503 and down.json["error"] == "storage_unavailable"
    assert down.headers["Retry-After"] == "30"

    runtime.storage = build_storage(runtime.settings, backoff=Backoff(attempts=1))
    s3_client(s3_endpoint).delete_object(Bucket=s3_bucket, Key=f"pdfs/{job_id}.pdf")
    missing = client.get(f"/api/jobs/{job_id}/download", headers=auth())
    assert missing.status_code == 410 and missing.json["error"] == "file_missing"
    assert "missing from the bucket" in missing.json["message"]


def test_retention_deletes_the_s3_objects(
        client, runtime, s3_endpoint, s3_bucket, templates) -> None:
    old = submit(client, sample_request())
    new = submit(client, sample_request() | {"code": "fresh"})
    run_jobs(runtime)
    age_completed_job(runtime, old)
    assert runtime.storage.exists(f"pdfs/{old}.pdf")

    assert purge_expired_pdfs(runtime) == 1

    assert not runtime.storage.exists(f"pdfs/{old}.pdf") and runtime.storage.exists(f"pdfs/{new}.pdf")
    gone = client.get(f"/api/jobs/{old}/download", headers=auth())
    assert gone.status_code == 410 and "retention" in gone.json["message"]
    assert purge_expired_pdfs(runtime) == 0


def test_s3_outage_retries_only_the_upload_on_the_same_host(
        client, runtime, s3_endpoint, s3_bucket, templates) -> None:
    working = runtime.storage
    runtime.storage = unreachable_s3(runtime.settings)
    job_id = submit(client, sample_request())
    run_jobs(runtime)

    body = status(client, job_id)
    assert body["status"] == "queued" and body["retry_count"] == 1, body
    assert body["error"].startswith(f"upload to S3 failed: S3 upload of pdfs/{job_id}.pdf failed: cannot reach")
    assert body["error"].endswith("; will retry the upload only")
    assert body["phase"].startswith("upload to S3 failed; retrying the upload only at ")
    kept = staging_area(runtime.settings.data_dir).path(job_id).read_bytes()
    assert kept.startswith(b"%PDF-")

    runtime.storage = working  # S3 is back
    requeue_retry(runtime, job_id)
    run_jobs(runtime)

    assert status(client, job_id)["status"] == "completed"
    assert templates.renders == [sample_request()["code"]]  # rendered once, uploaded on the retry
    assert stored_object(s3_endpoint, s3_bucket, f"pdfs/{job_id}.pdf") == kept
    assert not staging_area(runtime.settings.data_dir).path(job_id).exists()


def test_s3_upload_retry_on_another_host_renders_again(client, runtime, tmp_path: Path, templates) -> None:
    working = runtime.storage
    host_a = runtime.settings
    runtime.storage = unreachable_s3(host_a)
    job_id = submit(client, sample_request())
    run_jobs(runtime)
    kept_on_a = staging_area(host_a.data_dir).path(job_id)
    assert kept_on_a.exists()

    # The retry is taken by a worker of host B: its own DATA_DIR, no kept PDF there.
    runtime.settings = host_a.with_changes(host_name="worker-b", data_dir=tmp_path / "host-b")
    runtime.storage = working
    requeue_retry(runtime, job_id)
    run_jobs(runtime)

    assert status(client, job_id)["status"] == "completed"
    assert len(templates.renders) == 2
    with runtime.session() as session:
        assert job_store.get_job(session, job_id).stored_by_host == "worker-b"
    # Host A's kept PDF outlives the job until host A's staging sweep sees that the job has ended.
    assert kept_on_a.exists()
    runtime.settings = host_a
    assert sweep_staged(runtime) == 1 and not kept_on_a.exists()


def test_local_files_from_before_the_switch_to_s3_download_and_expire_on_their_host(client, runtime, templates) -> None:
    local = LocalDiskStorage(runtime.settings.pdf_dir)
    job_ids = [submit(client, sample_request() | {"code": code}) for code in ("mine", "theirs")]
    run_jobs(runtime)
    files = {}
    for job_id, host in zip(job_ids, (HOST_A, "worker-b"), strict=True):
        files[job_id] = local.put(f"{job_id}.pdf", b"%PDF-from-local-disk", "a.pdf").location
        with runtime.session() as session:
            session.execute(update(JobRecord).where(JobRecord.job_id == job_id).values(
                storage_backend="local", file_path=files[job_id], stored_by_host=host,
                completed_at=utcnow() - timedelta(days=31)))
            session.commit()

    mine, theirs = job_ids
    # Still served from this host's disk, and another host's answered 409, while storage is S3.
    assert client.get(f"/api/jobs/{mine}/download", headers=auth()).data == b"%PDF-from-local-disk"
    assert client.get(f"/api/jobs/{theirs}/download", headers=auth()).json["error"] == "stored_elsewhere"

    assert purge_expired_pdfs(runtime) == 1

    assert not local.exists(files[mine]) and local.exists(files[theirs])  # host B's disk is not ours to clean
