"""Dropbox storage: uploads into DROPBOX_FOLDER with a refresh token, records the file's shared link.

The official SDK refreshes the short-lived access token itself from the refresh token (on the first
call, when it is about to expire, and once when Dropbox answers expired_access_token); creating a
DropboxStorage opens no connection. The SDK's own retries are switched off: every call goes through
`storage.retrying.call_with_retries` with the retry policy's STORAGE_BACKOFF instead, because the SDK
retries neither refused connections nor timeouts, sleeps a random 0-2^n s it cannot be told, and
retries 429s without end by default; a 429's Retry-After is still honoured (up to the backoff's cap).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import urlsplit, urlunsplit

import dropbox
from dropbox.dropbox_client import BadInputException
from dropbox.exceptions import ApiError
from dropbox.files import FileMetadata, WriteMode
from dropbox.session import API_CONTENT_HOST, API_HOST, API_NOTIFICATION_HOST
from requests import PreparedRequest, Response, Session
from requests.adapters import HTTPAdapter

from storage.base import NotLocalError, StoragePermanentError, StoredFile, check_key
from storage.dropbox_errors import classify, is_not_found, retry_after
from storage.retrying import Backoff, call_with_retries

if TYPE_CHECKING:
    from config.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_BACKOFF = Backoff()
USER_AGENT = "pdf-jobs"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class EndpointAdapter(HTTPAdapter):
    """A requests transport adapter that sends the SDK's calls to another API root (DROPBOX_API_ENDPOINT).

    The SDK builds every URL as https://{api,content,notify}.dropboxapi.com/<path>; its only other way
    to change hosts is process-wide environment variables read at import, and those keep https. Its
    public `session=` argument takes a requests Session, and a transport adapter mounted on it (the
    documented way to customise requests' sending) swaps the scheme, host and root of each request.
    """

    def __init__(self, endpoint: str):
        super().__init__()
        parts = urlsplit(endpoint)
        self._scheme, self._netloc, self._root = parts.scheme, parts.netloc, parts.path.rstrip("/")

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        """Send `request` to the same path under the endpoint."""
        parts = urlsplit(request.url or "")
        request.url = urlunsplit((self._scheme, self._netloc, self._root + parts.path, parts.query, ""))
        return super().send(request, *args, **kwargs)


def api_session(api_endpoint: str | None = None) -> Session:
    """The SDK's own session (certificate-checking), with the API hosts sent to `api_endpoint` when given."""
    session = dropbox.create_session()
    if api_endpoint:
        adapter = EndpointAdapter(api_endpoint)
        for host in (API_HOST, API_CONTENT_HOST, API_NOTIFICATION_HOST):
            session.mount(f"https://{host}/", adapter)
    return session


class DropboxStorage:
    """Stores files in a Dropbox folder; locations are Dropbox paths, links are shared links.

    Args:
        app_key, app_secret, refresh_token: the app's credentials and the account's refresh token
            (no secret for a token from a PKCE flow).
        folder: the folder uploads go into ("/pdf-jobs"; "" for the root, of the app folder for
            App-folder apps); Dropbox creates it on the first upload.
        api_endpoint: API root to use instead of the Dropbox hosts (tests use a fake).
        backoff: tries per call on 429/5xx/connection errors before StorageError, and the waits
            between them (the retry policy's STORAGE_BACKOFF in the service).
        timeout: seconds the SDK waits for each packet of an answer.
    """

    name = "dropbox"

    def __init__(
        self,
        *,
        app_key: str,
        refresh_token: str,
        app_secret: str | None = None,
        folder: str = "/pdf-jobs",
        api_endpoint: str | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not app_key or not refresh_token:
            raise StoragePermanentError("STORAGE_BACKEND=dropbox needs DROPBOX_APP_KEY and DROPBOX_REFRESH_TOKEN")
        self.folder = folder.rstrip("/")
        self.backoff = backoff
        self._sleep = sleep
        try:
            self._client = dropbox.Dropbox(
                oauth2_refresh_token=refresh_token, app_key=app_key, app_secret=app_secret or None,
                session=api_session(api_endpoint), timeout=timeout, user_agent=USER_AGENT,
                max_retries_on_error=0, max_retries_on_rate_limit=0,  # ours instead (module docstring)
            )
        except BadInputException as exc:
            raise StoragePermanentError(f"Dropbox credentials are not usable: {exc}") from None

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> DropboxStorage:
        """Build from the DROPBOX_* settings; `options` are constructor options (backoff, timeout)."""
        return cls(
            app_key=settings.dropbox_app_key or "",
            app_secret=settings.dropbox_app_secret,
            refresh_token=settings.dropbox_refresh_token or "",
            folder=settings.dropbox_folder,
            api_endpoint=settings.dropbox_api_endpoint,
            **options,
        )

    def path_of(self, key: str, filename: str) -> str:
        """Where `key` goes: `<folder>/<key's folders>/<filename without .pdf>_<key's name>`.

        The readable name comes first (what people see in the folder and save a download as); the key
        makes it unique and the same on every try, so a retried upload replaces, never duplicates.
        """
        *folders, name = check_key(key).split("/")
        stem = _UNSAFE.sub("_", filename.removesuffix(".pdf")).strip("._")[:120]
        return "/".join([self.folder, *folders, f"{stem}_{name}" if stem else name])

    def put(self, key: str, data: bytes, filename: str) -> StoredFile:
        """Upload `data` (replacing an earlier try of the same key), share it, return its shared link."""
        path = self.path_of(key, filename)
        metadata = self._retrying(f"upload of {path}", lambda: self._client.files_upload(
            data, path, mode=WriteMode.overwrite, mute=True,  # mute: no desktop notification per PDF
        ))
        try:
            link = self._retrying(f"sharing of {path}", lambda: self._shared_link(path))
        except StoragePermanentError:
            self._delete_quietly(path)  # a failed job's file would have no row to expire it by
            raise
        logger.info("stored backend=dropbox key=%s path=%s size=%d", key, path, metadata.size)
        return StoredFile(backend=self.name, location=path, link=link, size=int(metadata.size))

    def open(self, location: str) -> BinaryIO:
        """Always raises NotLocalError: Dropbox files are served by redirecting to their shared link."""
        raise NotLocalError(f"file {location} is stored in Dropbox: redirect to its shared link")

    def delete(self, location: str) -> None:
        """Delete a Dropbox file; a file that is already gone is fine."""
        path = _check_location(location)
        self._retrying(f"delete of {path}", lambda: self._client.files_delete_v2(path), missing_ok=True)
        logger.info("deleted backend=dropbox path=%s", path)

    def exists(self, location: str) -> bool:
        """Whether a file is at the Dropbox path."""
        path = _check_location(location)
        found = self._retrying(f"lookup of {path}", lambda: self._client.files_get_metadata(path), missing_ok=True)
        return isinstance(found, FileMetadata)

    def _shared_link(self, path: str) -> str:
        """A new shared link of the file, or the one it already has (from an earlier try)."""
        try:
            return self._client.sharing_create_shared_link_with_settings(path).url
        except ApiError as exc:
            if not exc.error.is_shared_link_already_exists():
                raise
            known = exc.error.get_shared_link_already_exists()
            if known is not None and known.is_metadata():
                return known.get_metadata().url
            links = self._client.sharing_list_shared_links(path=path, direct_only=True).links
            if not links:
                raise
            return links[0].url

    def _delete_quietly(self, path: str) -> None:
        try:
            self.delete(path)
        except Exception:  # best effort after a failure that is being reported
            logger.warning("cleanup failed backend=dropbox path=%s", path, exc_info=True)

    def _retrying(self, what: str, call: Callable[[], T], *, missing_ok: bool = False) -> T | None:
        """Run `call`, retrying transient failures (the retry policy's backoff); map errors to ours."""

        def classified(exc: BaseException) -> Exception | None:
            return classify(exc, what)

        def found_or_none() -> T | None:
            try:
                return call()
            except ApiError as exc:
                if missing_ok and is_not_found(exc):
                    return None
                raise

        return call_with_retries(found_or_none, what=what, classify=classified, backoff=self.backoff,
                                 sleep=self._sleep, retry_after=retry_after)


def _check_location(location: str) -> str:
    """A Dropbox path as put() records it: "/" and non-empty parts, none "." or "..", printable."""
    parts = location.split("/") if isinstance(location, str) else []
    if (len(parts) < 2 or parts[0] or not all(parts[1:]) or any(part in (".", "..") for part in parts)
            or not location.isprintable() or "\\" in location):
        raise StoragePermanentError(f"{location!r} is not a Dropbox file path")
    return location
