from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.credentials import AnonymousCredentials

from config.settings import Settings
from storage import (
    GoogleDriveStorage,
    NotLocalError,
    StorageBackend,
    StorageError,
    StoragePermanentError,
    build_storage,
)
from storage.gdrive import DRIVE_SCOPE, KEY_PROPERTY, drive_base_url
from storage.retrying import Backoff
from storage.sharing import ShareTarget, parse_sharing
from tests.storage.drive_server import ACCESS_TOKEN, FakeDrive, serve_fake_drive

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\nbinary \x00\x01\x02 body\n%%EOF\n"


@pytest.fixture
def drive() -> Iterator[FakeDrive]:
    with serve_fake_drive() as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_storage(drive: FakeDrive, sleeps: list[float], **options: Any) -> GoogleDriveStorage:
    options.setdefault("folder_id", drive.folder_id)
    return GoogleDriveStorage(
        AnonymousCredentials(),
        api_endpoint=drive.base_url,
        sleep=sleeps.append,
        **{"backoff": Backoff(attempts=5, base=0.01, cap=30.0), **options},
    )


def write_service_account(path: Path, token_uri: str) -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "pdf-jobs-test",
        "private_key_id": "key-1",
        "private_key": pem,
        "client_email": "pdf-uploader@pdf-jobs-test.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return key


def test_gdrive_put_uploads_into_folder_and_returns_link(drive: FakeDrive, sleeps: list[float]) -> None:
    storage = make_storage(drive, sleeps)

    stored = storage.put("job-1.pdf", PDF, "minatBakatUmum_rb5Y.pdf")

    (upload,) = drive.calls("upload")
    assert upload.query["uploadType"] == ["multipart"]
    assert upload.json["parents"] == ["folder-1"]
    assert upload.json["name"] == "minatBakatUmum_rb5Y.pdf"
    assert upload.json["mimeType"] == "application/pdf"
    assert upload.json["appProperties"] == {KEY_PROPERTY: "job-1.pdf"}
    assert upload.media == PDF
    assert stored.backend == "gdrive"
    assert stored.location in drive.files
    assert stored.link == f"https://drive.google.com/file/d/{stored.location}/view?usp=drivesdk"
    assert stored.size == len(PDF)
    assert drive.calls("permission") == []
    assert sleeps == []


def test_gdrive_is_a_storage_backend(drive: FakeDrive, sleeps: list[float]) -> None:
    assert isinstance(make_storage(drive, sleeps), StorageBackend)


def test_gdrive_put_shares_as_configured(drive: FakeDrive, sleeps: list[float]) -> None:
    sharing = parse_sharing("user:ops@example.com, domain:example.com", anyone=True)
    storage = make_storage(drive, sleeps, sharing=sharing)

    stored = storage.put("job-1.pdf", PDF, "report.pdf")

    assert drive.permissions[stored.location] == [
        {"type": "user", "role": "reader", "emailAddress": "ops@example.com"},
        {"type": "domain", "role": "reader", "domain": "example.com"},
        {"type": "anyone", "role": "reader"},
    ]
    user, domain, anyone = drive.calls("permission")
    assert user.query["sendNotificationEmail"] == ["false"]
    assert "sendNotificationEmail" not in domain.query
    assert "sendNotificationEmail" not in anyone.query


def test_gdrive_put_retries_500_until_one_file_is_stored(drive: FakeDrive, sleeps: list[float]) -> None:
    drive.fail("upload", 500, 500)
    storage = make_storage(drive, sleeps)

    stored = storage.put("job-1.pdf", PDF, "report.pdf")

    assert len(drive.calls("upload")) == 3
    assert len(drive.files) == 1
    assert stored.link == drive.files[stored.location]["webViewLink"]
    assert sleeps == [0.01, 0.02]


@pytest.mark.parametrize(("status", "reason"), [(429, "rateLimitExceeded"), (503, "backendError"),
                                               (403, "userRateLimitExceeded")])
def test_gdrive_put_retries_rate_limits_and_outages(
    drive: FakeDrive, sleeps: list[float], status: int, reason: str
) -> None:
    drive.fail("upload", status, reason=reason)

    stored = make_storage(drive, sleeps).put("job-1.pdf", PDF, "report.pdf")

    assert len(drive.calls("upload")) == 2
    assert list(drive.files) == [stored.location]


def test_gdrive_put_gives_up_with_storage_error(drive: FakeDrive, sleeps: list[float]) -> None:
    drive.fail("upload", 500, 500, 500, 500)

    with pytest.raises(StorageError, match="HTTP 500 backendError"):
        storage = make_storage(drive, sleeps, backoff=Backoff(attempts=3, base=0.01, cap=30.0))
        storage.put("job-1.pdf", PDF, "report.pdf")

    assert len(drive.calls("upload")) == 3
    assert drive.files == {}
    assert sleeps == [0.01, 0.02]


def test_gdrive_put_finds_upload_that_answered_500(drive: FakeDrive, sleeps: list[float]) -> None:
    drive.fail("upload", 500, store=True)  # stored, but the client never heard about it

    stored = make_storage(drive, sleeps).put("job-1.pdf", PDF, "report.pdf")

    assert len(drive.calls("upload")) == 1
    assert list(drive.files) == [stored.location]
    assert stored.link == drive.files[stored.location]["webViewLink"]


def test_gdrive_put_same_key_again_reuses_file_and_shares_it(drive: FakeDrive, sleeps: list[float]) -> None:
    storage = make_storage(drive, sleeps, sharing=parse_sharing(None, anyone=True))

    first = storage.put("job-1.pdf", PDF, "report.pdf")
    second = storage.put("job-1.pdf", PDF, "report.pdf")

    assert first == second
    assert len(drive.calls("upload")) == 1
    assert len(drive.files) == 1
    assert len(drive.permissions[first.location]) == 2


def test_gdrive_put_403_is_permanent(drive: FakeDrive, sleeps: list[float]) -> None:
    drive.fail("upload", 403, reason="insufficientFilePermissions")

    with pytest.raises(StoragePermanentError, match="HTTP 403 insufficientFilePermissions.*GOOGLE_DRIVE_FOLDER_ID"):
        make_storage(drive, sleeps).put("job-1.pdf", PDF, "report.pdf")

    assert len(drive.calls("upload")) == 1
    assert sleeps == []


def test_gdrive_put_unknown_folder_is_permanent(drive: FakeDrive, sleeps: list[float]) -> None:
    with pytest.raises(StoragePermanentError, match="HTTP 404 notFound"):
        make_storage(drive, sleeps, folder_id="no-such-folder").put("job-1.pdf", PDF, "report.pdf")


def test_gdrive_put_quota_error_explains_shared_drives(drive: FakeDrive, sleeps: list[float]) -> None:
    drive.fail("upload", 403, reason="storageQuotaExceeded")

    with pytest.raises(StoragePermanentError, match="shared drive"):
        make_storage(drive, sleeps).put("job-1.pdf", PDF, "report.pdf")


def test_gdrive_put_share_refused_removes_upload(drive: FakeDrive, sleeps: list[float]) -> None:
    drive.fail("permission", 403, reason="publishOutNotPermitted")
    storage = make_storage(drive, sleeps, sharing=parse_sharing(None, anyone=True))

    with pytest.raises(StoragePermanentError, match="sharing of .* with anyone"):
        storage.put("job-1.pdf", PDF, "report.pdf")

    assert drive.files == {}


def test_gdrive_put_rejects_unsafe_key(drive: FakeDrive, sleeps: list[float]) -> None:
    with pytest.raises(StoragePermanentError, match="not allowed"):
        make_storage(drive, sleeps).put("x' or name contains '", PDF, "report.pdf")
    assert drive.requests == []


def test_gdrive_put_unreachable_api_is_transient(sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    storage = GoogleDriveStorage(
        AnonymousCredentials(), api_endpoint=f"http://127.0.0.1:{closed_port}",
        backoff=Backoff(attempts=2, base=0.01, cap=30.0), sleep=sleeps.append,
    )

    with pytest.raises(StorageError, match="cannot reach the API"):
        storage.put("job-1.pdf", PDF, "report.pdf")
    assert sleeps == [0.01]


def test_gdrive_delete_removes_file_and_404_is_fine(drive: FakeDrive, sleeps: list[float]) -> None:
    storage = make_storage(drive, sleeps)
    stored = storage.put("job-1.pdf", PDF, "report.pdf")
    assert storage.exists(stored.location)

    storage.delete(stored.location)
    storage.delete(stored.location)

    assert drive.files == {}
    assert not storage.exists(stored.location)
    assert [call.route for call in drive.calls("delete")] == ["delete", "delete"]
    assert sleeps == []


def test_gdrive_delete_retries_outage(drive: FakeDrive, sleeps: list[float]) -> None:
    storage = make_storage(drive, sleeps)
    stored = storage.put("job-1.pdf", PDF, "report.pdf")
    drive.fail("delete", 502)

    storage.delete(stored.location)

    assert drive.files == {}
    assert len(drive.calls("delete")) == 2


def test_gdrive_open_raises_not_local(drive: FakeDrive, sleeps: list[float]) -> None:
    with pytest.raises(NotLocalError, match="redirect"):
        make_storage(drive, sleeps).open("file1")


@pytest.mark.parametrize("location", ["../etc", "a/b", "", "x?y=1"])
def test_gdrive_rejects_invalid_file_ids(drive: FakeDrive, sleeps: list[float], location: str) -> None:
    storage = make_storage(drive, sleeps)
    for call in (storage.delete, storage.exists):
        with pytest.raises(StoragePermanentError, match="not a Google Drive file id"):
            call(location)
    assert drive.requests == []


def test_gdrive_credentials_file_gets_token_from_token_uri(drive: FakeDrive, tmp_path: Path) -> None:
    key = write_service_account(tmp_path / "sa.json", f"{drive.base_url}/token")
    drive.public_key = key.public_key()
    drive.require_token = True
    settings = Settings(
        data_dir=tmp_path,
        storage_backend="gdrive",
        google_drive_credentials_file=tmp_path / "sa.json",
        google_drive_folder_id=drive.folder_id,
        google_drive_share_anyone=True,
        google_drive_api_endpoint=drive.base_url,
    )

    storage = build_storage(settings, backoff=Backoff(base=0.0))
    assert drive.requests == []  # building the client opens no connection
    stored = storage.put("job-1.pdf", PDF, "report.pdf")

    (token,) = drive.calls("token")
    assert token.json["claims"]["scope"] == DRIVE_SCOPE
    assert token.json["claims"]["iss"] == "pdf-uploader@pdf-jobs-test.iam.gserviceaccount.com"
    api_calls = [call for call in drive.requests if call.route != "token"]
    assert {call.headers["authorization"] for call in api_calls} == {f"Bearer {ACCESS_TOKEN}"}
    assert stored.link is not None
    assert drive.permissions[stored.location] == [{"type": "anyone", "role": "reader"}]


def test_gdrive_token_refused_is_permanent(drive: FakeDrive, tmp_path: Path) -> None:
    write_service_account(tmp_path / "sa.json", f"{drive.base_url}/token")
    drive.public_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()  # wrong key
    settings = Settings(
        storage_backend="gdrive",
        google_drive_credentials_file=tmp_path / "sa.json",
        google_drive_api_endpoint=drive.base_url,
    )

    with pytest.raises(StoragePermanentError, match="could not get an access token.*invalid_grant"):
        build_storage(settings, backoff=Backoff(base=0.0)).put("job-1.pdf", PDF, "report.pdf")
    assert len(drive.calls("token")) == 1


def test_gdrive_missing_credentials_file_is_permanent(tmp_path: Path) -> None:
    settings = Settings(storage_backend="gdrive", google_drive_credentials_file=tmp_path / "missing.json")

    with pytest.raises(StoragePermanentError, match="missing.json does not exist"):
        build_storage(settings)


@pytest.mark.parametrize("content", ["not json", '{"type": "authorized_user"}', '{"type": "service_account"}'])
def test_gdrive_malformed_credentials_file_is_permanent(tmp_path: Path, content: str) -> None:
    (tmp_path / "sa.json").write_text(content)
    settings = Settings(storage_backend="gdrive", google_drive_credentials_file=tmp_path / "sa.json")

    with pytest.raises(StoragePermanentError, match="not a usable service-account key file"):
        build_storage(settings)


def test_gdrive_malformed_sharing_setting_is_permanent(tmp_path: Path) -> None:
    settings = Settings(storage_backend="gdrive", google_drive_share_with="ops@example.com")

    with pytest.raises(StoragePermanentError, match="GOOGLE_DRIVE_SHARE_WITH entry 'ops@example.com'"):
        build_storage(settings, credentials=AnonymousCredentials())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("user:a@b.com", (ShareTarget("user", "a@b.com"),)),
        ("group:team@b.com:writer , domain:b.com", (ShareTarget("group", "team@b.com", "writer"),
                                                    ShareTarget("domain", "b.com"))),
        ("anyone", (ShareTarget("anyone"),)),
        ("", ()),
        (None, ()),
    ],
)
def test_parse_sharing_accepts_documented_format(value: str | None, expected: tuple[ShareTarget, ...]) -> None:
    assert parse_sharing(value) == expected


@pytest.mark.parametrize("value", ["a@b.com", "user:b.com", "domain:a@b.com", "user:a@b.com:owner", "anyone:x"])
def test_parse_sharing_rejects_malformed_entries(value: str) -> None:
    with pytest.raises(StoragePermanentError, match="not valid"):
        parse_sharing(value)


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://127.0.0.1:8085", "http://127.0.0.1:8085/drive/v3/"),
        ("https://www.googleapis.com/", "https://www.googleapis.com/drive/v3/"),
        ("https://private.p.googleapis.com/drive/v3", "https://private.p.googleapis.com/drive/v3/"),
    ],
)
def test_drive_base_url_adds_service_path(endpoint: str, expected: str) -> None:
    assert drive_base_url(endpoint) == expected
