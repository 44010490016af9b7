"""The storage interface shared by every backend, its result type and its errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

# One path segment of a key or location: starts with a letter or digit (so never "." or ".." and
# never a hidden temp file), then letters, digits, dot, dash, underscore.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
MAX_KEY_SEGMENTS = 8


class StorageError(Exception):
    """A storage operation failed for a reason that may pass (outage, rate limit): retry later."""

    retryable = True


class StoragePermanentError(Exception):
    """A storage operation failed in a way retrying cannot fix (credentials, permissions, bad key)."""

    retryable = False


class NotLocalError(StoragePermanentError):
    """The file is not on local disk (Drive): serve it by redirecting to its link instead."""


class StoredFileNotFoundError(StoragePermanentError):
    """No stored file at the given location."""


@dataclass(frozen=True)
class StoredFile:
    """Where a put() left the bytes.

    `location` is what open()/delete()/exists() take back: a path relative to the local root, or a
    Drive file id. `link` is the Drive webViewLink (None on local disk).
    """

    backend: str
    location: str
    link: str | None
    size: int


@runtime_checkable
class StorageBackend(Protocol):
    """Stores finished PDFs. Implementations: LocalDiskStorage, GoogleDriveStorage."""

    name: str

    def put(self, key: str, data: bytes, filename: str) -> StoredFile:
        """Store `data` under the unique `key`; `filename` is the name people see."""
        ...

    def open(self, location: str) -> BinaryIO:
        """Open a stored file for reading (local only; Drive raises NotLocalError)."""
        ...

    def delete(self, location: str) -> None:
        """Delete a stored file; a file that is already gone is fine."""
        ...

    def exists(self, location: str) -> bool:
        """Whether a stored file is still there."""
        ...


def check_key(key: str, *, what: str = "storage key", max_segments: int = MAX_KEY_SEGMENTS) -> str:
    """Return `key` if it is a safe relative name (segments of [A-Za-z0-9._-] joined by "/")."""
    if not isinstance(key, str) or not key:
        raise StoragePermanentError(f"{what} must be a non-empty string")
    segments = key.split("/")
    if len(segments) > max_segments or not all(_SEGMENT.fullmatch(part) for part in segments):
        raise StoragePermanentError(
            f"{what} {key!r} is not allowed: use letters, digits, '.', '-', '_' in at most "
            f"{max_segments} '/'-separated parts, each starting with a letter or digit "
            "(no '..', no absolute paths)"
        )
    return key
