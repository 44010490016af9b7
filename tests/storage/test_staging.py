"""The staging area that keeps rendered PDFs until their upload succeeds."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from jobs.retention import sweep_staged
from jobs.runtime import Runtime
from storage.staging import StagingArea, staging_area
from store.models import CANCELLED, FAILED, QUEUED, JobRecord, utcnow

PDF = b"%PDF-1.7\nrendered\n%%EOF\n"


def test_staging_save_load_discard(tmp_path: Path) -> None:
    area = StagingArea(tmp_path / "staging")
    assert area.load("pdf_1") is None

    area.save("pdf_1", PDF)
    area.save("pdf_1", PDF + b"again")

    assert area.load("pdf_1") == PDF + b"again"
    assert sorted(path.name for path in area.root.iterdir()) == ["pdf_1.pdf"]  # no temp file left
    area.discard("pdf_1")
    area.discard("pdf_1")
    assert area.load("pdf_1") is None and area.job_ids() == []


def test_staging_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    area = StagingArea(tmp_path / "staging")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        area.save("pdf_1", PDF)
    assert list(area.root.iterdir()) == []


@pytest.mark.parametrize("job_id", ["../x", "a/b", "", ".hidden"])
def test_staging_refuses_unsafe_job_ids(tmp_path: Path, job_id: str) -> None:
    with pytest.raises(ValueError):
        StagingArea(tmp_path).path(job_id)


def add_job(runtime: Runtime, job_id: str, status: str) -> None:
    now = utcnow()
    with runtime.session() as session:
        session.add(JobRecord(job_id=job_id, client_name="acme", code=job_id, product_id="minatBakatUmum",
                              status=status, request_fingerprint="x", created_at=now, updated_at=now))
        session.commit()


def test_staging_sweep_removes_files_of_ended_or_unknown_jobs(runtime: Runtime) -> None:
    area = staging_area(runtime.settings.data_dir)
    for job_id, state in (("pdf_active", QUEUED), ("pdf_failed", FAILED), ("pdf_cancelled", CANCELLED)):
        add_job(runtime, job_id, state)
        area.save(job_id, PDF)
    area.save("pdf_unknown", PDF)
    stale_temp, fresh_temp = area.root / ".pdf_x.pdf.1.tmp", area.root / ".pdf_y.pdf.2.tmp"
    stale_temp.write_bytes(b"half")
    fresh_temp.write_bytes(b"half")
    old = time.time() - 7200
    os.utime(stale_temp, (old, old))

    assert sweep_staged(runtime) == 4

    assert area.job_ids() == ["pdf_active"]
    assert not stale_temp.exists() and fresh_temp.exists()
