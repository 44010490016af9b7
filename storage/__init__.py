"""Where finished PDFs are kept: local disk (default) or Google Drive, behind one interface."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from storage.base import (
    NotLocalError,
    StorageBackend,
    StorageError,
    StoragePermanentError,
    StoredFile,
    StoredFileNotFoundError,
)
from storage.gdrive import GoogleDriveStorage
from storage.local import LocalDiskStorage

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = [
    "GoogleDriveStorage",
    "LocalDiskStorage",
    "NotLocalError",
    "StorageBackend",
    "StorageError",
    "StoragePermanentError",
    "StoredFile",
    "StoredFileNotFoundError",
    "build_storage",
]


def build_storage(settings: Settings, **options: Any) -> StorageBackend:
    """The backend STORAGE_BACKEND selects; `options` go to GoogleDriveStorage (credentials, backoff...)."""
    if settings.storage_backend == "gdrive":
        return GoogleDriveStorage.from_settings(settings, **options)
    if settings.storage_backend == "local":
        return LocalDiskStorage(settings.pdf_dir)
    raise StoragePermanentError(f"STORAGE_BACKEND must be local or gdrive, got {settings.storage_backend!r}")
