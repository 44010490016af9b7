from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from config.settings import Settings
from storage import NotLocalError, StorageBackend, StorageError, StoragePermanentError, build_storage
from storage.dropbox import DropboxStorage
from storage.dropbox_links import download_url
from storage.retrying import Backoff
from tests.storage.dropbox_server import FakeDropbox, content_hash, serve_fake_dropbox

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\nbinary \x00\x01\x02 body\n%%EOF\n"
PATH = "/pdf-jobs/report_job-1.pdf"


@pytest.fixture
def fake() -> Iterator[FakeDropbox]:
    with serve_fake_dropbox() as served:
        yield served


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_storage(fake: FakeDropbox, sleeps: list[float], **options: Any) -> DropboxStorage:
    credentials = {"app_key": fake.app_key, "app_secret": fake.app_secret, "refresh_token": fake.refresh_token}
    return DropboxStorage(**{**credentials, "api_endpoint": fake.base_url, "sleep": sleeps.append,
                             "backoff": Backoff(attempts=5, base=0.01, cap=30.0), **options})


def put(storage: DropboxStorage) -> Any:
    return storage.put("job-1.pdf", PDF, "report.pdf")


def secrets_absent(fake: FakeDropbox, text: str) -> bool:
    return fake.refresh_token not in text and fake.app_secret not in text


def test_dropbox_put_uploads_into_folder_with_refreshed_token_and_returns_shared_link(fake, sleeps,
                                                                                     caplog) -> None:
    caplog.set_level(logging.DEBUG)
    storage = make_storage(fake, sleeps)
    assert fake.requests == []  # building the client opens no connection

    stored = put(storage)

    (token,) = fake.calls("token")
    assert token.arg == {"grant_type": "refresh_token", "refresh_token": fake.refresh_token,
                         "client_id": fake.app_key, "client_secret": fake.app_secret}
    (upload,) = fake.calls("upload")
    assert upload.arg["path"] == PATH and upload.arg["mode"] in ("overwrite", {".tag": "overwrite"})
    assert upload.arg["mute"] is True and upload.arg["content_hash"] == content_hash(PDF)
    assert upload.body == PDF and fake.file(PATH)["data"] == PDF
    issued = [request.headers["authorization"] for request in fake.requests if request.route != "token"]
    assert issued == ["Bearer access-token-1"] * 2  # upload and share, with the token from the refresh
    assert (stored.backend, stored.location, stored.size) == ("dropbox", PATH, len(PDF))
    assert stored.link == fake.links[PATH] and stored.link.startswith(f"{fake.base_url}/scl/fi/")
    assert sleeps == []
    assert "stored backend=dropbox key=job-1.pdf" in caplog.text  # logged, down to the SDK's and urllib3's DEBUG
    assert secrets_absent(fake, caplog.text) and "access-token-1" not in caplog.text


def test_dropbox_is_a_storage_backend(fake, sleeps) -> None:
    assert isinstance(make_storage(fake, sleeps), StorageBackend)


@pytest.mark.parametrize("link_in_conflict", [True, False])
def test_dropbox_put_same_key_again_replaces_file_and_keeps_link(fake, sleeps, link_in_conflict: bool) -> None:
    fake.link_in_conflict = link_in_conflict  # without it, the SDK asks list_shared_links
    storage = make_storage(fake, sleeps)

    first, second = put(storage), put(storage)

    assert first == second and list(fake.files) == [PATH]
    assert len(fake.calls("upload")) == 2 and len(fake.calls("share")) == 2
    assert len(fake.calls("list_links")) == (0 if link_in_conflict else 1)


def test_dropbox_put_retries_5xx_with_backoff(fake, sleeps) -> None:
    fake.fail("upload", 500, 503)

    stored = put(make_storage(fake, sleeps))

    assert len(fake.calls("upload")) == 3 and list(fake.files) == [PATH]
    assert stored.link == fake.links[PATH]
    assert sleeps == [0.01, 0.02]


def test_dropbox_put_waits_as_long_as_a_429_asks_up_to_the_cap(fake, sleeps) -> None:
    fake.fail("upload", 429, retry_after=3)
    fake.fail("upload", 500)
    fake.fail("upload", 429, retry_after=120)

    put(make_storage(fake, sleeps, backoff=Backoff(attempts=5, base=0.01, cap=30.0)))

    assert len(fake.calls("upload")) == 4 and list(fake.files) == [PATH]
    assert sleeps == [3.0, 0.02, 30.0]  # Retry-After, then the backoff's own, then Retry-After capped


def test_dropbox_put_gives_up_with_storage_error(fake, sleeps) -> None:
    fake.fail("upload", 500, 500, 500, 500)

    with pytest.raises(StorageError, match="Dropbox upload of /pdf-jobs/report_job-1.pdf failed: HTTP 500"):
        put(make_storage(fake, sleeps, backoff=Backoff(attempts=3, base=0.01, cap=30.0)))

    assert len(fake.calls("upload")) == 3 and fake.files == {}
    assert sleeps == [0.01, 0.02]


def test_dropbox_put_retry_of_an_upload_that_landed_replaces_it(fake, sleeps) -> None:
    fake.fail("upload", 500, store=True)  # stored, but the client never heard about it

    stored = put(make_storage(fake, sleeps))

    assert len(fake.calls("upload")) == 2 and list(fake.files) == [PATH]
    assert fake.file(PATH)["data"] == PDF and stored.link == fake.links[PATH]


def test_dropbox_put_too_many_write_operations_is_transient(fake, sleeps) -> None:
    fake.fail("upload", 409, error={".tag": "path", "reason": {".tag": "too_many_write_operations"},
                                    "upload_session_id": ""})

    put(make_storage(fake, sleeps))

    assert len(fake.calls("upload")) == 2 and sleeps == [0.01]


def test_dropbox_put_account_full_is_permanent(fake, sleeps) -> None:
    fake.quota = len(PDF) - 1

    with pytest.raises(StoragePermanentError, match="path/insufficient_space .*out of space"):
        put(make_storage(fake, sleeps))

    assert len(fake.calls("upload")) == 1 and fake.files == {} and sleeps == []


def test_dropbox_put_no_write_permission_is_permanent(fake, sleeps) -> None:
    fake.fail("upload", 409, error={".tag": "path", "reason": {".tag": "no_write_permission"},
                                    "upload_session_id": ""})

    with pytest.raises(StoragePermanentError, match="path/no_write_permission .*DROPBOX_FOLDER"):
        put(make_storage(fake, sleeps))
    assert sleeps == []


def test_dropbox_revoked_refresh_token_is_permanent_and_not_shown(fake, sleeps) -> None:
    storage = make_storage(fake, sleeps, refresh_token="revoked-refresh-token")

    with pytest.raises(StoragePermanentError, match="HTTP 401 invalid_access_token .*DROPBOX_REFRESH_TOKEN") as info:
        put(storage)

    assert len(fake.calls("token")) == 1 and fake.calls("upload") == [] and sleeps == []
    assert "revoked-refresh-token" not in str(info.value) and secrets_absent(fake, str(info.value))


def test_dropbox_wrong_app_secret_is_permanent(fake, sleeps) -> None:
    with pytest.raises(StoragePermanentError, match="HTTP 400: .*invalid_client.*DROPBOX_APP_SECRET") as info:
        put(make_storage(fake, sleeps, app_secret="wrong-secret"))
    assert "wrong-secret" not in str(info.value) and secrets_absent(fake, str(info.value))


def test_dropbox_expired_access_token_is_refreshed_once(fake, sleeps) -> None:
    storage = make_storage(fake, sleeps)
    put(storage)
    fake.expire_tokens()

    storage.delete(PATH)

    assert len(fake.calls("token")) == 2 and fake.files == {}
    first, second = fake.calls("delete")
    assert (first.headers["authorization"], second.headers["authorization"]) == (
        "Bearer access-token-1", "Bearer access-token-4")  # ids 2 and 3 went to the file and its link
    assert sleeps == []


def test_dropbox_token_endpoint_outage_is_retried(fake, sleeps) -> None:
    fake.fail("token", 503)

    stored = put(make_storage(fake, sleeps))

    assert len(fake.calls("token")) == 2 and stored.link == fake.links[PATH] and sleeps == [0.01]


def test_dropbox_missing_scope_names_the_scope(fake, sleeps) -> None:
    fake.fail("share", 401, error={".tag": "missing_scope", "required_scope": "sharing.write"})

    with pytest.raises(StoragePermanentError, match="missing_scope sharing.write .*app console"):
        put(make_storage(fake, sleeps))

    assert fake.files == {}  # the upload is removed again: a failed job leaves no file behind


def test_dropbox_share_refused_removes_upload(fake, sleeps) -> None:
    fake.fail("share", 409, error={".tag": "email_not_verified"})

    with pytest.raises(StoragePermanentError, match="sharing of .* email_not_verified .*verified e-mail"):
        put(make_storage(fake, sleeps))

    assert fake.files == {} and len(fake.calls("delete")) == 1


def test_dropbox_unreachable_api_is_transient(sleeps) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    storage = DropboxStorage(app_key="k", refresh_token="r", api_endpoint=f"http://127.0.0.1:{closed_port}",
                             backoff=Backoff(attempts=2, base=0.01, cap=30.0), sleep=sleeps.append)

    with pytest.raises(StorageError, match="cannot reach the API: ConnectionError"):
        put(storage)
    assert sleeps == [0.01]


def test_dropbox_delete_removes_file_and_missing_is_fine(fake, sleeps) -> None:
    storage = make_storage(fake, sleeps)
    stored = put(storage)
    assert storage.exists(stored.location)

    storage.delete(stored.location)
    storage.delete(stored.location)

    assert fake.files == {} and fake.links == {}
    assert not storage.exists(stored.location)
    assert len(fake.calls("delete")) == 2 and sleeps == []


def test_dropbox_delete_retries_outage(fake, sleeps) -> None:
    storage = make_storage(fake, sleeps)
    stored = put(storage)
    fake.fail("delete", 502)

    storage.delete(stored.location)

    assert fake.files == {} and len(fake.calls("delete")) == 2 and sleeps == [0.01]


def test_dropbox_open_raises_not_local(fake, sleeps) -> None:
    with pytest.raises(NotLocalError, match="redirect"):
        make_storage(fake, sleeps).open(PATH)


@pytest.mark.parametrize("location", ["", "relative.pdf", "/a/../b.pdf", "/a//b.pdf", "/", "/a\\b.pdf", "/a\n.pdf"])
def test_dropbox_rejects_invalid_locations(fake, sleeps, location: str) -> None:
    storage = make_storage(fake, sleeps)
    for call in (storage.delete, storage.exists):
        with pytest.raises(StoragePermanentError, match="not a Dropbox file path"):
            call(location)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("folder", "key", "filename", "expected"),
    [
        ("/pdf-jobs", "job-1.pdf", "minatBakatUmum_rb5Y_20261207.pdf",
         "/pdf-jobs/minatBakatUmum_rb5Y_20261207_job-1.pdf"),
        ("", "2026/job-1.pdf", "a b/c.pdf", "/2026/a_b_c_job-1.pdf"),
        ("/PDF Reports", "job-1.pdf", ".pdf", "/PDF Reports/job-1.pdf"),
    ],
)
def test_dropbox_path_puts_readable_name_first(fake, sleeps, folder: str, key: str, filename: str,
                                               expected: str) -> None:
    assert make_storage(fake, sleeps, folder=folder).path_of(key, filename) == expected


def test_dropbox_put_rejects_unsafe_key(fake, sleeps) -> None:
    with pytest.raises(StoragePermanentError, match="not allowed"):
        make_storage(fake, sleeps).put("../job-1.pdf", PDF, "report.pdf")
    assert fake.requests == []


def test_dropbox_built_from_settings(fake, tmp_path) -> None:
    settings = Settings(
        data_dir=tmp_path, storage_backend="dropbox", dropbox_app_key=fake.app_key,
        dropbox_app_secret=fake.app_secret, dropbox_refresh_token=fake.refresh_token,
        dropbox_folder="/Reports", dropbox_api_endpoint=fake.base_url,
    )

    stored = build_storage(settings, backoff=Backoff(base=0.0)).put("job-1.pdf", PDF, "report.pdf")

    assert stored.location == "/Reports/report_job-1.pdf" and stored.link == fake.links["/reports/report_job-1.pdf"]


def test_dropbox_without_credentials_is_permanent() -> None:
    with pytest.raises(StoragePermanentError, match="needs DROPBOX_APP_KEY and DROPBOX_REFRESH_TOKEN"):
        build_storage(Settings(storage_backend="dropbox", dropbox_app_key="key-1"))


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://www.dropbox.com/scl/fi/abc/r.pdf?rlkey=k1&dl=0", "https://www.dropbox.com/scl/fi/abc/r.pdf?rlkey=k1&dl=1"),
        ("https://www.dropbox.com/s/abc/r.pdf", "https://www.dropbox.com/s/abc/r.pdf?dl=1"),
    ],
)
def test_download_url_asks_for_the_file_itself(link: str, expected: str) -> None:
    assert download_url(link) == expected
