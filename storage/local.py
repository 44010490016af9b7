"""Local disk storage: atomic writes into date-sharded folders under one root."""

from __future__ import annotations

import errno
import logging
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from storage.base import (
    MAX_KEY_SEGMENTS,
    StorageError,
    StoragePermanentError,
    StoredFile,
    StoredFileNotFoundError,
    check_key,
)

logger = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
# Write failures that can pass (disk full, quota, I/O hiccup); others (EACCES, EROFS) are permanent.
_TRANSIENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EINTR}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LocalDiskStorage:
    """Keeps files under `root/YYYY/MM/DD/<key>` (UTC date of the put).

    A put writes a hidden temp file in the target folder, fsyncs it and renames it into place, so a
    reader sees either no file or the whole file. Locations are the POSIX paths relative to `root`.
    """

    name = "local"

    def __init__(self, root: Path, *, now: Callable[[], datetime] = _utc_now):
        self.root = Path(root).resolve()
        self._now = now

    def put(self, key: str, data: bytes, filename: str) -> StoredFile:
        """Write `data` atomically to `YYYY/MM/DD/<key>`; `filename` is not used on disk."""
        check_key(key)
        location = f"{self._now():%Y/%m/%d}/{key}"
        target = self._path(location)
        try:
            _make_private_dirs(target.parent)
            _write_atomically(target, data)
        except OSError as exc:
            message = f"cannot write {target}: {exc.strerror or exc}"
            if exc.errno in _TRANSIENT_ERRNOS:
                raise StorageError(message) from exc
            raise StoragePermanentError(message) from exc
        logger.info("stored backend=local location=%s size=%d", location, len(data))
        return StoredFile(backend=self.name, location=location, link=None, size=len(data))

    def open(self, location: str) -> BinaryIO:
        """Open a stored file for reading; the caller closes it."""
        path = self._path(location)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise StoredFileNotFoundError(f"no stored file at {location!r} under {self.root}") from None

    def delete(self, location: str) -> None:
        """Delete a stored file; a missing file is fine."""
        path = self._path(location)
        try:
            path.unlink()
        except FileNotFoundError:
            logger.debug("delete skipped backend=local location=%s reason=missing", location)
            return
        logger.info("deleted backend=local location=%s", location)

    def exists(self, location: str) -> bool:
        """Whether the file at `location` exists."""
        return self._path(location).is_file()

    def path_of(self, location: str) -> Path:
        """The absolute path of a location (for send_file and retention sweeps)."""
        return self._path(location)

    def remove_stale_temp_files(self, older_than: timedelta = timedelta(days=1)) -> int:
        """Delete temp files left by writers killed mid-put (SIGKILL); returns how many."""
        cutoff = time.time() - older_than.total_seconds()
        removed = 0
        for path in self.root.rglob(f".*{TEMP_SUFFIX}"):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        if removed:
            logger.info("removed stale temp files backend=local count=%d", removed)
        return removed

    def _path(self, location: str) -> Path:
        check_key(location, what="location", max_segments=MAX_KEY_SEGMENTS + 3)
        path = (self.root / location).resolve()
        if not path.is_relative_to(self.root):  # a symlink inside root pointing out of it
            raise StoragePermanentError(f"location {location!r} resolves outside the storage root")
        return path


def _make_private_dirs(folder: Path) -> None:
    """Create `folder` and its missing parents 0700 (mkdir's parents=True gives the parents the default mode)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for each in reversed(missing):
        each.mkdir(mode=0o700, exist_ok=True)


def _write_atomically(target: Path, data: bytes) -> None:
    """Write to a temp file in target's folder, fsync, rename over target, fsync the folder."""
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o600)  # reports hold personal data: the service's user only (docs/security.md)
        os.replace(temp_name, target)
    except BaseException:
        _remove_quietly(temp_name)
        raise
    _fsync_dir(target.parent)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; some filesystems cannot fsync a folder, which is fine."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
