"""Where finished PDFs are kept: local disk (default), an S3-compatible bucket, Google Drive or Dropbox, behind one
interface."""

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
    """The backend STORAGE_BACKEND selects; `options` go to the remote ones (backoff, credentials...)."""
    if settings.storage_backend == "gdrive":
        return GoogleDriveStorage.from_settings(settings, **options)
    if settings.storage_backend == "s3":
        from storage.s3 import S3Storage  # boto3 takes ~0.15 s to import: only processes that use S3 pay it

        return S3Storage.from_settings(settings, **options)
    if settings.storage_backend == "dropbox":
        from storage.dropbox import DropboxStorage  # the SDK takes ~0.4 s to import: only processes that use it pay

        return DropboxStorage.from_settings(settings, **options)
    if settings.storage_backend == "local":
        return LocalDiskStorage(settings.pdf_dir)
    raise StoragePermanentError(
        f"STORAGE_BACKEND must be local, s3, gdrive or dropbox, got {settings.storage_backend!r}")
