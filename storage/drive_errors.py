"""Turns Google Drive client failures into StorageError (retry later) or StoragePermanentError."""

from __future__ import annotations

import json
from typing import Any

import httplib2
from google.auth import exceptions as auth_exceptions
from googleapiclient.errors import HttpError

from storage.base import StorageError, StoragePermanentError

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "sharingRateLimitExceeded"})


def classify(exc: BaseException, what: str) -> StorageError | StoragePermanentError | None:
    """Our error for a failed Drive call, or None when `exc` is not a Drive/network failure (a bug)."""
    if isinstance(exc, HttpError):
        return _classify_http(exc, what)
    if isinstance(exc, auth_exceptions.RefreshError):
        message = f"Google Drive {what}: could not get an access token: {exc}"
        return StorageError(message) if exc.retryable else StoragePermanentError(message)
    if isinstance(exc, (auth_exceptions.TransportError, httplib2.HttpLib2Error, OSError)):
        return StorageError(f"Google Drive {what}: cannot reach the API: {type(exc).__name__}: {exc}")
    return None


def is_not_found(exc: HttpError) -> bool:
    """Whether the API answered 404 (file or folder not found)."""
    return _status(exc) == 404


def _classify_http(exc: HttpError, what: str) -> StorageError | StoragePermanentError:
    status, reason, message = _status(exc), *_details(exc)
    text = f"Google Drive {what} failed: HTTP {status}" + (f" {reason}" if reason else "") + f": {message}"
    if status in (408, 429) or status >= 500 or reason in RATE_LIMIT_REASONS:
        return StorageError(text)
    if status == 401:
        return StoragePermanentError(f"{text} (the service-account credentials were rejected)")
    if reason == "storageQuotaExceeded":
        return StoragePermanentError(
            f"{text} (service accounts have no Drive storage of their own: use a folder in a shared drive "
            "as GOOGLE_DRIVE_FOLDER_ID and add the service account to that shared drive)"
        )
    if status in (403, 404):
        return StoragePermanentError(
            f"{text} (check that GOOGLE_DRIVE_FOLDER_ID exists and is shared with the service account "
            "as editor, and that the Drive API is enabled for its project)"
        )
    return StoragePermanentError(text)


def _status(exc: HttpError) -> int:
    try:
        return int(exc.resp.status)
    except (AttributeError, TypeError, ValueError):
        return 0


def _details(exc: HttpError) -> tuple[str, str]:
    """(reason code, message) from the JSON error body, as far as present."""
    try:
        error: Any = json.loads(exc.content.decode("utf-8"))["error"]
    except (AttributeError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return "", str(getattr(exc, "reason", "") or "no details")[:200]
    if not isinstance(error, dict):
        return "", str(error)[:200]
    errors = error.get("errors") or [{}]
    reason = errors[0].get("reason", "") if isinstance(errors[0], dict) else ""
    return str(reason), str(error.get("message", "no details"))[:200]
