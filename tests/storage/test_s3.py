"""S3Storage against moto's S3 server on 127.0.0.1, and against a server answering S3 errors."""

from __future__ import annotations

from collections.abc import Iterator
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
from tests.storage.s3_server import REGION, S3_TEST_ENV, new_bucket, s3_client, serve_moto, serve_s3_errors

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\nbinary \x00\x01\x02 body\n%%EOF\n"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """One moto S3 server for the module."""
    with serve_moto() as url:
        yield url


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Static test credentials for boto3's chain; no shared files, no instance metadata."""
    for name, value in S3_TEST_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def bucket(endpoint: str, aws_env: None) -> str:
    return new_bucket(endpoint)


def make_storage(endpoint: str, bucket: str, **options: Any) -> S3Storage:
    options.setdefault("backoff", Backoff(attempts=1))
    return S3Storage(bucket, endpoint_url=endpoint, region=REGION, **options)


def test_s3_put_stores_object_under_prefix_and_open_streams_it(endpoint: str, bucket: str) -> None:
    storage = make_storage(endpoint, bucket, prefix="/pdf-jobs/prod/")
    assert isinstance(storage, StorageBackend)

    stored = storage.put("job-1.pdf", PDF, "minatBakatUmum_rb5Y_20260115.pdf")

    assert (stored.backend, stored.location, stored.link) == ("s3", "pdf-jobs/prod/job-1.pdf", None)
    assert stored.size == len(PDF)
    head = s3_client(endpoint).head_object(Bucket=bucket, Key="pdf-jobs/prod/job-1.pdf")
    assert head["ContentType"] == "application/pdf"
    assert head["ContentDisposition"].startswith('attachment; filename="minatBakatUmum_rb5Y_20260115.pdf"')
    body = storage.open(stored.location)
    try:
        assert body.read() == PDF
    finally:
        body.close()


def test_s3_put_of_the_same_key_replaces_the_object(endpoint: str, bucket: str) -> None:
    storage = make_storage(endpoint, bucket)
    storage.put("job-1.pdf", b"%PDF-first", "a.pdf")
    stored = storage.put("job-1.pdf", PDF, "a.pdf")

    listed = s3_client(endpoint).list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in listed] == ["job-1.pdf"] == [stored.location]
    assert storage.open(stored.location).read() == PDF


def test_s3_exists_and_delete_and_missing_objects(endpoint: str, bucket: str) -> None:
    storage = make_storage(endpoint, bucket)
    stored = storage.put("job-1.pdf", PDF, "a.pdf")
    assert storage.exists(stored.location)

    storage.delete(stored.location)

    assert not storage.exists(stored.location)
    storage.delete(stored.location)  # already gone: fine
    with pytest.raises(StoredFileNotFoundError, match="no object 'job-1.pdf' in bucket"):
        storage.open(stored.location)


def test_s3_link_is_a_presigned_url_that_downloads_the_object(endpoint: str, bucket: str) -> None:
    storage = make_storage(endpoint, bucket, presign_seconds=120)
    stored = storage.put("job-1.pdf", PDF, "report.pdf")

    url = storage.link(stored.location)

    assert url.startswith(f"{endpoint}/{bucket}/job-1.pdf?")
    assert "X-Amz-Expires=120" in url and "X-Amz-Signature=" in url  # SigV4, which R2 and new regions need
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.content == PDF
    assert response.headers["Content-Type"] == "application/pdf"


def test_s3_unknown_bucket_is_permanent_and_says_what_to_check(endpoint: str, aws_env: None) -> None:
    storage = make_storage(endpoint, "no-such-bucket")

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


def test_s3_without_credentials_is_permanent(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    storage = make_storage(endpoint, "pdfs")

    with pytest.raises(StoragePermanentError, match="Unable to locate credentials"):
        storage.put("job-1.pdf", PDF, "a.pdf")


def test_s3_refuses_unsafe_keys_and_locations(endpoint: str, bucket: str) -> None:
    storage = make_storage(endpoint, bucket)
    for bad in ("../etc/passwd", "/abs.pdf", ".hidden.pdf", ""):
        with pytest.raises(StoragePermanentError):
            storage.put(bad, PDF, "a.pdf")
        with pytest.raises(StoragePermanentError):
            storage.open(bad)


def test_build_storage_makes_s3_storage_from_settings(endpoint: str, bucket: str) -> None:
    settings = Settings.from_env({
        "STORAGE_BACKEND": "s3", "S3_BUCKET": bucket, "S3_PREFIX": "jobs/", "S3_ENDPOINT_URL": endpoint,
        "S3_REGION": REGION, "S3_DOWNLOAD": "redirect", "S3_PRESIGN_SECONDS": "60",
    })

    storage = build_storage(settings, backoff=Backoff(attempts=1))

    assert isinstance(storage, S3Storage) and (storage.bucket, storage.prefix) == (bucket, "jobs/")
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
