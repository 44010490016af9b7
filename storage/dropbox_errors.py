"""Turns Dropbox SDK failures into StorageError (retry later) or StoragePermanentError.

Dropbox answers a refused call with a typed error (a stone union such as
`UploadError('path', UploadWriteFailed(reason=WriteError('insufficient_space')))`); its tags, joined
by "/" (`path/insufficient_space`), are the error summary Dropbox documents, and what we match on.
"""

from __future__ import annotations

from typing import Any

import requests
from dropbox import exceptions as dbx
from dropbox import stone_base, stone_serializers, stone_validators

from storage.base import StorageError, StoragePermanentError

# Tags of refusals that pass: another write holds the folder's lock, or the body was damaged on the way.
TRANSIENT_TAGS = frozenset({"too_many_write_operations", "too_many_requests", "internal_error",
                            "content_hash_mismatch"})
SPACE_TAGS = frozenset({"insufficient_space", "team_folder_insufficient_space", "member_folder_insufficient_space"})
PERMISSION_TAGS = frozenset({"no_write_permission", "access_denied", "access_restricted", "team_folder"})
PATH_TAGS = frozenset({"malformed_path", "disallowed_name", "not_folder", "conflict", "not_found"})
CREDENTIALS_HINT = ("check DROPBOX_APP_KEY, DROPBOX_APP_SECRET and DROPBOX_REFRESH_TOKEN: the refresh token must "
                    "come from this app and not be revoked")
SCOPES_HINT = ("enable the scopes files.content.write, files.metadata.read, sharing.write and sharing.read in the "
               "app console, then issue a new DROPBOX_REFRESH_TOKEN (a token keeps the scopes it was issued with)")
HINTS = [
    (SPACE_TAGS, "the Dropbox account is out of space: free some or raise its plan"),
    (PERMISSION_TAGS, "the account may not write into DROPBOX_FOLDER: check the folder's sharing and the team's "
                      "policies"),
    (PATH_TAGS, "check DROPBOX_FOLDER: a folder path such as /pdf-jobs, with no file of that name on its way"),
    (frozenset({"email_not_verified"}), "shared links need a verified e-mail address on the Dropbox account"),
    (frozenset({"settings_error", "banned_member"}), "the account's or team's shared-link policy refuses the link"),
]
_CONNECTION_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def classify(exc: BaseException, what: str) -> StorageError | StoragePermanentError | None:
    """Our error for a failed Dropbox call, or None when `exc` is not a Dropbox/network failure (a bug)."""
    prefix = f"Dropbox {what} failed"
    if isinstance(exc, dbx.ApiError):
        return _classify_api_error(exc, prefix)
    if isinstance(exc, dbx.AuthError):
        return _classify_auth_error(exc, prefix)
    if isinstance(exc, dbx.RateLimitError):
        wait = f", retry after {exc.backoff} s" if exc.backoff is not None else ""
        return StorageError(f"{prefix}: HTTP 429 rate limited{wait}")
    if isinstance(exc, dbx.BadInputError):  # 400: on the token refresh, a wrong app key or secret
        return StoragePermanentError(f"{prefix}: HTTP 400: {_short(exc.message)} ({CREDENTIALS_HINT})")
    if isinstance(exc, dbx.HttpError):
        text = f"{prefix}: HTTP {exc.status_code}: {_short(exc.body)}"
        return StorageError(text) if exc.status_code in (408, 429) or exc.status_code >= 500 else (
            StoragePermanentError(text))
    if isinstance(exc, _CONNECTION_ERRORS):
        return StorageError(f"{prefix}: cannot reach the API: {type(exc).__name__}: {_short(exc)}")
    if isinstance(exc, requests.RequestException):  # a malformed URL or request: configuration
        return StoragePermanentError(f"{prefix}: {type(exc).__name__}: {_short(exc)}")
    return None


def is_not_found(exc: BaseException) -> bool:
    """Whether Dropbox answered that the path or file does not exist."""
    return isinstance(exc, dbx.ApiError) and "not_found" in error_tags(exc.error)


def retry_after(exc: BaseException) -> float | None:
    """The wait a 429 asked for (its Retry-After, or retry_after in the body), if any."""
    return float(exc.backoff) if isinstance(exc, dbx.RateLimitError) and exc.backoff is not None else None


def error_tags(error: Any) -> list[str]:
    """The tags of a Dropbox error, outermost first: ['path', 'insufficient_space']."""
    if isinstance(error, stone_base.Union):
        validator: stone_validators.Validator = stone_validators.Union(type(error))
    elif isinstance(error, stone_base.Struct):
        validator = stone_validators.Struct(type(error))
    else:
        return []
    try:
        return _tags(stone_serializers.json_compat_obj_encode(validator, error))
    except stone_validators.ValidationError:
        return []


def _classify_api_error(exc: dbx.ApiError, prefix: str) -> StorageError | StoragePermanentError:
    tags = error_tags(exc.error)
    summary = "/".join(tags) or repr(exc.error)
    text = f"{prefix}: {summary}" + (f": {_short(exc.user_message_text)}" if exc.user_message_text else "")
    if TRANSIENT_TAGS.intersection(tags):
        return StorageError(text)
    hint = next((hint for known, hint in HINTS if known.intersection(tags)), None)
    return StoragePermanentError(f"{text} ({hint})" if hint else text)


def _classify_auth_error(exc: dbx.AuthError, prefix: str) -> StoragePermanentError:
    tags = error_tags(exc.error)
    if exc.error is not None and exc.error.is_missing_scope():
        scope = exc.error.get_missing_scope().required_scope
        return StoragePermanentError(f"{prefix}: HTTP 401 missing_scope {scope} ({SCOPES_HINT})")
    return StoragePermanentError(f"{prefix}: HTTP 401 {'/'.join(tags) or 'unauthorized'} ({CREDENTIALS_HINT})")


def _tags(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return []
    tags = [str(value[".tag"])] if ".tag" in value else []
    for name, inner in value.items():
        if name != ".tag":
            tags += _tags(inner)
    return tags


def _short(value: object) -> str:
    return str(value or "no details")[:200]
