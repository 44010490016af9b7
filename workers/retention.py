"""Retention: stored PDFs older than PDF_RETENTION_DAYS are removed; their SQL rows stay."""

from __future__ import annotations

import logging
from datetime import timedelta

from store import jobs as job_store
from store.models import utcnow
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def purge_expired_pdfs(rt: Runtime, *, max_batches: int = 50) -> int:
    """Delete expired PDFs from storage and mark their rows (download then answers 410)."""
    cutoff = utcnow() - timedelta(days=rt.settings.pdf_retention_days)
    removed = 0
    for _ in range(max_batches):
        with rt.session() as session:
            batch = job_store.expired_files(session, cutoff)
        if not batch:
            break
        for job in batch:
            rt.storage.delete(job.file_path)
            with rt.session() as session:
                job_store.mark_file_deleted(session, job.job_id)
            removed += 1
    if removed:
        log.info("event=retention_purged count=%s older_than_days=%s", removed, rt.settings.pdf_retention_days)
    return removed
