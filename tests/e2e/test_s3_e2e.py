"""The real service (supervisord, gunicorn with gevent, RQ worker) storing PDFs in S3 (moto's server)."""

from __future__ import annotations

from pathlib import Path

from store import jobs as job_store
from tests.conftest import sample_request
from tests.e2e.conftest import Api, start_service
from tests.storage.s3_server import REGION, S3_TEST_ENV, s3_client


def test_s3_service_stores_in_bucket_and_streams_downloads(tmp_path: Path, s3_endpoint: str, s3_bucket: str) -> None:
    service = start_service(
        tmp_path / "var", STORAGE_BACKEND="s3", S3_BUCKET=s3_bucket, S3_PREFIX="e2e", S3_ENDPOINT_URL=s3_endpoint,
        S3_REGION=REGION, HOST_NAME="e2e-host-1", WORKERS="1", API_PROCESSES="1", **S3_TEST_ENV,
    )
    try:
        api = Api(service)
        job_id = api.submit(sample_request() | {"code": "e2e-s3"}).json()["job_id"]
        body = api.wait_for(job_id)
        download = api.get(body["download_url"])
        with service.session_factory()() as session:
            row = job_store.get_job(session, job_id)
    finally:
        service.stop()

    assert body["status"] == "completed", body
    assert (row.storage_backend, row.file_path, row.stored_by_host) == ("s3", f"e2e/{job_id}.pdf", "e2e-host-1")
    stored = s3_client(s3_endpoint).get_object(Bucket=s3_bucket, Key=row.file_path)["Body"].read()
    assert download.status_code == 200 and download.headers["Content-Type"] == "application/pdf"
    assert download.content == stored and stored.startswith(b"%PDF-")
    assert not list((tmp_path / "var").glob("pdfs/**/*.pdf"))  # nothing on the host's disk
