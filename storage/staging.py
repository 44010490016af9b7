"""Rendered PDFs waiting for their upload: a retried job uploads the kept file instead of re-rendering.

A job whose storage is remote (Google Drive) writes its rendered PDF to `DATA_DIR/staging/<job_id>.pdf`
before the upload, atomically, and removes it after a successful upload or when the job ends. A retry
on the same host finds it and goes straight to the upload. Files of jobs that ended some other way
(cancelled mid-upload, worker lost) are removed by `jobs.retention.sweep_staged`.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
SUFFIX = ".pdf"
TEMP_MAX_AGE = 3600.0  # seconds; a temp file this old was left by a writer killed mid-write


class StagingArea:
    """One folder of rendered PDFs, one file per job id."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, job_id: str) -> Path:
        """Where the rendered PDF of `job_id` is kept."""
        if not _JOB_ID.fullmatch(job_id):
            raise ValueError(f"job id {job_id!r} cannot be a staging file name")
        return self.root / f"{job_id}{SUFFIX}"

    def load(self, job_id: str) -> bytes | None:
        """The kept PDF of `job_id`, or None when there is none."""
        try:
            return self.path(job_id).read_bytes()
        except FileNotFoundError:
            return None

    def save(self, job_id: str, pdf: bytes) -> None:
        """Keep `pdf` for `job_id`: written to a temp file, fsynced, renamed into place."""
        target = self.path(job_id)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=self.root, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pdf)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    def discard(self, job_id: str) -> None:
        """Remove the kept PDF of `job_id` (a missing file is fine)."""
        self.path(job_id).unlink(missing_ok=True)

    def remove_stale_temp_files(self, older_than: float = TEMP_MAX_AGE) -> int:
        """Delete temp files left by writers killed mid-write; returns how many."""
        cutoff = time.time() - older_than
        removed = 0
        for path in self.root.glob(".*.tmp") if self.root.is_dir() else ():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def job_ids(self) -> list[str]:
        """The job ids that have a kept PDF."""
        if not self.root.is_dir():
            return []
        return sorted(path.stem for path in self.root.glob(f"*{SUFFIX}") if _JOB_ID.fullmatch(path.stem))


def staging_area(data_dir: Path) -> StagingArea:
    """The staging area under a data directory (DATA_DIR/staging)."""
    return StagingArea(data_dir / "staging")
