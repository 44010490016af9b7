"""S3Storage against moto's S3 server on 127.0.0.1, and against a server answering S3 errors."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from config import Settings
from config.settings import SettingsError
from jobs.errors import is_permanent
from ops.harness import free_port
from storage import (
    StorageBackend,
    StorageError,
    StoragePermanentError,
    StoredFileNotFoundError,
    build_storage,
)
from storage.retrying import Backoff
from storage.s3 import S3Storage
from tests.storage.s3_server import REGION, s3_client, serve_s3_errors

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\nbinary \x00\x01\x02 body\n%%EOF\n"
pytestmark = pytest.mark.usefixtures("aws_env")


def make_storage(s3_endpoint: str, s3_bucket: str, **options: Any) -> S3Storage:
    options.setdefault("backoff", Backoff(attempts=1))
    return S3Storage(s3_bucket, endpoint_url=s3_endpoint, region=REGION, **options)


def test_s3_put_stores_object_under_prefix_and_open_streams_it(s3_endpoint: str, s3_bucket: str) -> None:
    storage = make_storage(s3_endpoint, s3_bucket, prefix="/pdf-jobs/prod/")
    assert isinstance(storage, StorageBackend)

    stored = storage.put("job-1.pdf", PDF, "minatBakatUmum_rb5Y_20260115.pdf")

    assert (stored.backend, stored.location, stored.link) == ("s3", "pdf-jobs/prod/job-1.pdf", None)
    assert stored.size == len(PDF)
    head = s3_client(s3_endpoint).head_object(Bucket=s3_bucket, Key="pdf-jobs/prod/job-1.pdf")
    assert head["ContentType"] == "application/pdf"
    assert head["ContentDisposition"].startswith('attachment; filename="minatBakatUmum_rb5Y_20260115.pdf"')
    body = storage.open(stored.location)
    try:
        assert body.read() == PDF
    finally:
        body.close()


def test_s3_put_of_the_same_key_replaces_the_object(s3_endpoint: str, s3_bucket: str) -> None:
    storage = make_storage(s3_endpoint, s3_bucket)
    storage.put("job-1.pdf", b"%PDF-first", "a.pdf")
    stored = storage.put("job-1.pdf", PDF, "a.pdf")

    listed = s3_client(s3_endpoint).list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert [item["Key"] for item in listed] == ["job-1.pdf"] == [stored.location]
    assert storage.open(stored.location).read() == PDF


def test_s3_exists_and_delete_and_missing_objects(s3_endpoint: str, s3_bucket: str) -> None:
    storage = make_storage(s3_endpoint, s3_bucket)
    stored = storage.put("job-1.pdf", PDF, "a.pdf")
    assert storage.exists(stored.location)

    storage.delete(stored.location)

    assert not storage.exists(stored.location)
    storage.delete(stored.location)  # already gone: fine
    with pytest.raises(StoredFileNotFoundError, match="no object 'job-1.pdf' in bucket"):
        storage.open(stored.location)


def test_s3_link_is_a_presigned_url_that_downloads_the_object(s3_endpoint: str, s3_bucket: str) -> None:
    storage = make_storage(s3_endpoint, s3_bucket, presign_seconds=120)
    stored = storage.put("job-1.pdf", PDF, "report.pdf")

    url = storage.link(stored.location)

    assert url.startswith(f"{s3_endpoint}/{s3_bucket}/job-1.pdf?")
    assert "X-Amz-Expires=120" in url and "X-Amz-Signature=" in url  # SigV4, which R2 and new regions need
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.content == PDF
    assert response.headers["Content-Type"] == "application/pdf"


def test_s3_unknown_bucket_is_permanent_and_says_what_to_check(s3_endpoint: str) -> None:
    storage = make_storage(s3_endpoint, "no-such-bucket")

    with pytest.raises(StoragePermanentError, match="NoSuchBucket") as caught:
        storage.put("job-1.pdf", PDF, "a.pdf")

    assert "check S3_BUCKET" in str(caught.value) and is_permanent(caught.value)


def test_s3_unreachable_endpoint_is_transient() -> None:
    storage = make_storage(f"http://127.0.0.1:{free_port()}", "pdfs")  # nothing listens there

    with pytest.raises(StorageError, match="cannot reach the S3 endpoint") as caught:
        storage.put("job-1.pdf", PDF, "a.pdf")

    assert not isinstance(caught.value, StoragePermanentError) and not is_permanent(caught.value)


@pytest.mark.parametrize(("status", "code"), [(503, "SlowDown"), (500, "InternalError")])
def test_s3_throttling_and_server_errors_are_retried_then_transient(status: int, code: str) -> None:
    with serve_s3_errors(status, code) as server:
        storage = make_storage(server.endpoint_url, "pdfs", backoff=Backoff(attempts=2))

        with pytest.raises(StorageError, match=f"HTTP {status} {code}") as caught:
            storage.put("job-1.pdf", PDF, "a.pdf")

    assert server.requests == 2  # botocore's standard retry mode, with the policy's number of tries
    assert not isinstance(caught.value, StoragePermanentError)


@pytest.mark.parametrize("code", ["AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"])
def test_s3_refused_credentials_are_permanent_without_retries(code: str) -> None:
    with serve_s3_errors(403, code) as server:
        storage = make_storage(server.endpoint_url, "pdfs", backoff=Backoff(attempts=3))

        with pytest.raises(StoragePermanentError, match=f"HTTP 403 {code}") as caught:
            storage.put("job-1.pdf", PDF, "a.pdf")

    assert server.requests == 1
    assert "AWS_ACCESS_KEY_ID" in str(caught.value)


def test_s3_without_credentials_is_permanent(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    storage = make_storage(s3_endpoint, "pdfs")

    with pytest.raises(StoragePermanentError, match="Unable to locate credentials"):
        storage.put("job-1.pdf", PDF, "a.pdf")


def test_s3_refuses_unsafe_keys_and_locations(s3_endpoint: str, s3_bucket: str) -> None:
    storage = make_storage(s3_endpoint, s3_bucket)
    for bad in ("../etc/passwd", "/abs.pdf", ".hidden.pdf", ""):
        with pytest.raises(StoragePermanentError):
            storage.put(bad, PDF, "a.pdf")
        with pytest.raises(StoragePermanentError):
            storage.open(bad)


def test_build_storage_makes_s3_storage_from_settings(s3_endpoint: str, s3_bucket: str) -> None:
    settings = Settings.from_env({
        "STORAGE_BACKEND": "s3", "S3_BUCKET": s3_bucket, "S3_PREFIX": "jobs/", "S3_ENDPOINT_URL": s3_endpoint,
        "S3_REGION": REGION, "S3_DOWNLOAD": "redirect", "S3_PRESIGN_SECONDS": "60",
    })

    storage = build_storage(settings, backoff=Backoff(attempts=1))

    assert isinstance(storage, S3Storage) and (storage.bucket, storage.prefix) == (s3_bucket, "jobs/")
    assert storage.put("job-9.pdf", PDF, "a.pdf").location == "jobs/job-9.pdf"
    assert (settings.s3_download, settings.s3_presign_seconds) == ("redirect", 60)


def test_s3_settings_are_checked_together() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"STORAGE_BACKEND": "s3", "S3_DOWNLOAD": "proxy", "S3_PRESIGN_SECONDS": "700000",
                           "S3_PREFIX": "a/../b", "S3_ENDPOINT_URL": "minio:9000"})

    problems = "\n".join(caught.value.problems)
    assert "STORAGE_BACKEND=s3 needs S3_BUCKET" in problems
    assert "S3_DOWNLOAD must be one of stream, redirect" in problems
    assert "S3_PRESIGN_SECONDS must be 1-604800 seconds" in problems
    assert "S3_PREFIX must be up to 8" in problems
    assert "S3_ENDPOINT_URL must start with http:// or https://" in problems
    assert Settings.from_env({}).s3_download == "stream"
