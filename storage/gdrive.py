"""Google Drive storage: uploads into a folder with a service account, shares, records webViewLink.

The client is built from the discovery document bundled with google-api-python-client, so
creating a GoogleDriveStorage opens no connection; the first request fetches an access token.
One instance per process (and per thread): httplib2 connections are not shareable.
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit, urlunsplit

import google_auth_httplib2
import httplib2
from google.auth.credentials import Credentials
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest, MediaIoBaseUpload

from storage.base import NotLocalError, StoragePermanentError, StoredFile, check_key
from storage.drive_errors import classify, is_not_found
from storage.retrying import Backoff, call_with_retries
from storage.sharing import ShareTarget, parse_sharing

if TYPE_CHECKING:
    from config.settings import Settings

logger = logging.getLogger(__name__)
DEFAULT_BACKOFF = Backoff()

DRIVE_SCOPE = "https://www.googleapis.com/auth/drive.file"
KEY_PROPERTY = "pdf_storage_key"  # appProperties entry that makes a put findable (and idempotent)
MIMETYPE = "application/pdf"
_FILE_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")


def load_credentials(path: Path) -> Credentials:
    """Load service-account credentials (scope drive.file) from a JSON key file."""
    try:
        return service_account.Credentials.from_service_account_file(str(path), scopes=[DRIVE_SCOPE])
    except FileNotFoundError:
        raise StoragePermanentError(f"GOOGLE_DRIVE_CREDENTIALS_FILE {path} does not exist") from None
    except (ValueError, KeyError) as exc:  # bad JSON, not a service account, unreadable private key
        raise StoragePermanentError(
            f"GOOGLE_DRIVE_CREDENTIALS_FILE {path} is not a usable service-account key file "
            f"(JSON with type, client_email, private_key, token_uri): {type(exc).__name__}: {exc}"
        ) from None


def drive_base_url(api_endpoint: str) -> str:
    """The Drive v3 base URL for an endpoint given as an API root or as the full .../drive/v3/ URL."""
    parts = urlsplit(api_endpoint)
    path = parts.path.rstrip("/")
    if not path.endswith("/drive/v3"):
        path += "/drive/v3"
    return urlunsplit((parts.scheme, parts.netloc, path + "/", "", ""))


class GoogleDriveStorage:
    """Stores files in Google Drive; locations are Drive file ids, links are webViewLinks.

    Args:
        credentials: google-auth credentials (from `load_credentials`, or AnonymousCredentials in tests).
        folder_id: the Drive folder uploads go into (a shared-drive folder for service accounts).
        sharing: who gets reader access to each upload (see `storage.sharing`).
        api_endpoint: API root or .../drive/v3/ URL to use instead of https://www.googleapis.com/.
        backoff: tries per Drive call on 429/5xx/connection errors before StorageError, and the waits
            between them (the retry policy's STORAGE_BACKOFF in the service).
    """

    name = "gdrive"

    def __init__(
        self,
        credentials: Credentials,
        *,
        folder_id: str | None = None,
        sharing: tuple[ShareTarget, ...] = (),
        api_endpoint: str | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.folder_id = folder_id
        self.sharing = sharing
        self.backoff = backoff
        self._sleep = sleep
        self._base_url = drive_base_url(api_endpoint) if api_endpoint else None
        http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=timeout))
        client_options = {"api_endpoint": self._base_url} if self._base_url else None
        self._service = build(
            "drive", "v3", http=http, static_discovery=True, cache_discovery=False, client_options=client_options
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, credentials: Credentials | None = None, **options: Any
    ) -> GoogleDriveStorage:
        """Build from Settings; `credentials` defaults to the GOOGLE_DRIVE_CREDENTIALS_FILE key file."""
        if credentials is None:
            if settings.google_drive_credentials_file is None:
                raise StoragePermanentError("STORAGE_BACKEND=gdrive needs GOOGLE_DRIVE_CREDENTIALS_FILE")
            credentials = load_credentials(settings.google_drive_credentials_file)
        sharing = parse_sharing(settings.google_drive_share_with, anyone=settings.google_drive_share_anyone)
        return cls(
            credentials,
            folder_id=settings.google_drive_folder_id,
            sharing=sharing,
            api_endpoint=settings.google_drive_api_endpoint,
            **options,
        )

    def put(self, key: str, data: bytes, filename: str) -> StoredFile:
        """Upload `data` as `filename` (or find the earlier upload of `key`), share it, return its link."""
        check_key(key)
        found = self._retrying(
            f"upload of {key}", lambda: self._find_once(key) or self._create_once(key, data, filename)
        )
        file_id = found["id"]
        self._share(file_id)
        size = int(found.get("size") or len(data))
        logger.info("stored backend=gdrive key=%s file_id=%s size=%d", key, file_id, size)
        return StoredFile(backend=self.name, location=file_id, link=found.get("webViewLink"), size=size)

    def open(self, location: str) -> BinaryIO:
        """Always raises NotLocalError: Drive files are served by redirecting to their link."""
        raise NotLocalError(f"file {location} is stored in Google Drive: redirect to its google_drive_link")

    def delete(self, location: str) -> None:
        """Delete a Drive file; a file that is already gone (404) is fine."""
        file_id = _check_file_id(location)
        request = self._service.files().delete(fileId=file_id, supportsAllDrives=True)
        self._retrying(f"delete of {file_id}", request.execute, missing_ok=True)
        logger.info("deleted backend=gdrive file_id=%s", file_id)

    def exists(self, location: str) -> bool:
        """Whether the Drive file exists and is not in the trash."""
        file_id = _check_file_id(location)
        request = self._service.files().get(fileId=file_id, fields="id,trashed", supportsAllDrives=True)
        found = self._retrying(f"lookup of {file_id}", request.execute, missing_ok=True)
        return bool(found) and not found.get("trashed", False)

    def _find_once(self, key: str) -> dict[str, Any] | None:
        """The file an earlier put of `key` created (best effort: Drive search can lag a little)."""
        query = f"appProperties has {{ key='{KEY_PROPERTY}' and value='{key}' }} and trashed = false"
        if self.folder_id:
            query += f" and '{_quote(self.folder_id)}' in parents"
        request = self._service.files().list(
            q=query,
            fields="files(id,webViewLink,size)",
            pageSize=1,
            corpora="allDrives",
            includeItemsFromAllDrives=True,
            supportsAllDrives=True,
        )
        files = request.execute(num_retries=0).get("files") or []
        if files:
            logger.info("upload skipped backend=gdrive key=%s file_id=%s reason=already-uploaded", key, files[0]["id"])
        return files[0] if files else None

    def _create_once(self, key: str, data: bytes, filename: str) -> dict[str, Any]:
        body: dict[str, Any] = {"name": filename, "mimeType": MIMETYPE, "appProperties": {KEY_PROPERTY: key}}
        if self.folder_id:
            body["parents"] = [self.folder_id]
        media = MediaIoBaseUpload(io.BytesIO(data), mimetype=MIMETYPE, resumable=False)
        request = self._service.files().create(
            body=body, media_body=media, fields="id,webViewLink,size", supportsAllDrives=True
        )
        return self._fix_upload_uri(request).execute(num_retries=0)

    def _share(self, file_id: str) -> None:
        for target in self.sharing:
            options: dict[str, Any] = {}
            if target.type in ("user", "group"):
                options["sendNotificationEmail"] = False
            request = self._service.permissions().create(
                fileId=file_id, body=target.permission(), fields="id", supportsAllDrives=True, **options
            )
            try:
                self._retrying(f"sharing of {file_id} with {target}", request.execute)
            except StoragePermanentError:
                self._delete_quietly(file_id)  # a file nobody can open would be a broken link
                raise

    def _delete_quietly(self, file_id: str) -> None:
        try:
            self.delete(file_id)
        except Exception:  # best effort after a failure that is being reported
            logger.warning("cleanup failed backend=gdrive file_id=%s", file_id, exc_info=True)

    def _fix_upload_uri(self, request: HttpRequest) -> HttpRequest:
        """Use the endpoint's scheme for uploads too (the client keeps https:// from the discovery doc)."""
        if self._base_url:
            endpoint, upload = urlsplit(self._base_url), urlsplit(request.uri)
            request.uri = urlunsplit(upload._replace(scheme=endpoint.scheme, netloc=endpoint.netloc))
        return request

    def _retrying(self, what: str, call: Callable[[], Any], *, missing_ok: bool = False) -> Any:
        """Run `call`, retrying transient failures (the retry policy's backoff); map errors to ours."""

        def classified(exc: BaseException) -> Exception | None:
            return classify(exc, what) if isinstance(exc, Exception) else None

        if not missing_ok:
            return call_with_retries(call, what=what, classify=classified, backoff=self.backoff, sleep=self._sleep)

        def found_or_none() -> Any:
            try:
                return call()
            except HttpError as exc:
                if is_not_found(exc):
                    return None
                raise

        return call_with_retries(found_or_none, what=what, classify=classified, backoff=self.backoff,
                                 sleep=self._sleep)


def _check_file_id(location: str) -> str:
    if not isinstance(location, str) or not _FILE_ID.fullmatch(location):
        raise StoragePermanentError(f"{location!r} is not a Google Drive file id")
    return location


def _quote(value: str) -> str:
    """Escape a value for a single-quoted Drive query string."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
