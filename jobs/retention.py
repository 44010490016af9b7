"""Retention: stored PDFs older than PDF_RETENTION_DAYS are removed (their SQL rows stay), and kept
PDFs of ended jobs are swept from the staging area."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from jobs.runtime import Runtime
from storage.base import StorageBackend
from storage.local import LocalDiskStorage
from storage.staging import staging_area
from store import jobs as job_store
from store.models import FINAL_STATES, JobRecord, utcnow

log = logging.getLogger(__name__)


def purge_expired_pdfs(rt: Runtime, *, max_batches: int = 50) -> int:
    """Delete expired PDFs from storage and mark their rows (download then answers 410).

    Only files this process can reach: those of its storage backend (any host's, when shared) and
    the local-disk files this host stored (HOST_NAME), also after a switch to remote storage.
    Another host's local files wait for that host's own clean-up.
    """
    cutoff = utcnow() - timedelta(days=rt.settings.pdf_retention_days)
    host = rt.settings.host_name
    storage = rt.storage
    if storage.name == "local":
        removed = _purge(rt, storage, cutoff, host=host, max_batches=max_batches)
    else:
        removed = _purge(rt, storage, cutoff, host=None, max_batches=max_batches)
        removed += _purge(rt, LocalDiskStorage(rt.settings.pdf_dir), cutoff, host=host, max_batches=max_batches)
    if removed:
        log.info("event=retention_purged count=%s older_than_days=%s", removed, rt.settings.pdf_retention_days)
    return removed


def _purge(rt: Runtime, storage: StorageBackend, cutoff: datetime, *, host: str | None, max_batches: int) -> int:
    """Delete the expired files of one backend (of one host when given); returns how many."""
    removed = 0
    for _ in range(max_batches):
        with rt.session() as session:
            batch = job_store.expired_files(session, cutoff, backend=storage.name, host=host)
        if not batch:
            break
        for job in batch:
            storage.delete(job.file_path)
            with rt.session() as session:
                job_store.mark_file_deleted(session, job.job_id)
            removed += 1
    return removed


def sweep_staged(rt: Runtime) -> int:
    """Remove kept PDFs whose job has ended or no longer exists; returns how many."""
    area = staging_area(rt.settings.data_dir)
    temp_removed = area.remove_stale_temp_files()
    job_ids = area.job_ids()
    if not job_ids:
        return temp_removed
    with rt.session() as session:
        active = set(
            session.scalars(
                select(JobRecord.job_id).where(JobRecord.job_id.in_(job_ids), JobRecord.status.not_in(FINAL_STATES))
            ).all()
        )
    removed = [job_id for job_id in job_ids if job_id not in active]
    for job_id in removed:
        area.discard(job_id)
        log.info("job=%s event=staged_pdf_removed reason=job_ended", job_id)
    return len(removed) + temp_removed
