"""Downloads of local-disk PDFs with several hosts: each row names the host that stored its file."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from jobs.retention import purge_expired_pdfs
from store import jobs as job_store
from store.models import JobRecord, utcnow
from tests.conftest import auth, run_jobs, sample_request


def complete_job_on(runtime, client, host: str, code: str = "rb5YrWGWJXOHoj6r") -> str:  # noqa: ANN001
    """Submit a job and let a worker of `host` render and store it (local disk)."""
    here = runtime.settings
    runtime.settings = here.with_changes(host_name=host)
    job_id = client.post("/api/reports/generate-async", json=sample_request() | {"code": code},
                         headers=auth()).json["job_id"]
    run_jobs(runtime)
    runtime.settings = here
    return job_id


def test_download_of_another_hosts_local_file_is_409_naming_host_and_fix(client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(host_name="api-1")
    job_id = complete_job_on(runtime, client, "worker-2")

    response = client.get(f"/api/jobs/{job_id}/download", headers=auth())

    assert response.status_code == 409 and response.json["error"] == "stored_elsewhere"
    message = response.json["message"]
    assert "host 'worker-2'" in message and "this is host 'api-1'" in message
    assert "STORAGE_BACKEND=s3" in message
    assert client.get(f"/api/jobs/{job_id}", headers=auth()).json["status"] == "completed"


def test_download_of_this_hosts_local_file_streams_it(client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(host_name="api-1")
    job_id = complete_job_on(runtime, client, "api-1")
    with runtime.session() as session:
        row = job_store.get_job(session, job_id)

    response = client.get(f"/api/jobs/{job_id}/download", headers=auth())

    assert (row.storage_backend, row.stored_by_host) == ("local", "api-1")
    assert response.status_code == 200 and response.data == runtime.storage.path_of(row.file_path).read_bytes()


def test_download_of_a_missing_local_file_is_410_not_500(client, runtime) -> None:
    job_id = complete_job_on(runtime, client, runtime.settings.host_name)
    with runtime.session() as session:
        runtime.storage.path_of(job_store.get_job(session, job_id).file_path).unlink()

    response = client.get(f"/api/jobs/{job_id}/download", headers=auth())

    assert response.status_code == 410 and response.json["error"] == "file_missing"
    assert "HOST_NAME" in response.json["message"] and "STORAGE_BACKEND=s3" in response.json["message"]


def test_download_of_an_s3_file_on_a_local_disk_host_is_409(client, runtime) -> None:
    job_id = complete_job_on(runtime, client, runtime.settings.host_name)
    with runtime.session() as session:
        session.execute(update(JobRecord).where(JobRecord.job_id == job_id)
                        .values(storage_backend="s3", file_path=f"pdfs/{job_id}.pdf"))
        session.commit()

    response = client.get(f"/api/jobs/{job_id}/download", headers=auth())

    assert response.status_code == 409 and response.json["error"] == "stored_elsewhere"
    assert "STORAGE_BACKEND=local" in response.json["message"] and "STORAGE_BACKEND=s3" in response.json["message"]


def test_retention_on_local_disk_removes_only_this_hosts_files(client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(host_name="api-1")
    mine = complete_job_on(runtime, client, "api-1")
    theirs = complete_job_on(runtime, client, "worker-2", code="other-host")
    with runtime.session() as session:
        session.execute(update(JobRecord).values(completed_at=utcnow() - timedelta(days=31)))
        session.commit()

    assert purge_expired_pdfs(runtime) == 1

    with runtime.session() as session:
        assert job_store.get_job(session, mine).file_deleted_at is not None
        assert job_store.get_job(session, theirs).file_deleted_at is None  # left for worker-2's own clean-up
    runtime.settings = runtime.settings.with_changes(host_name="worker-2")
    assert purge_expired_pdfs(runtime) == 1
