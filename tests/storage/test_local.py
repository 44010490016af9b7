from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.settings import Settings
from storage import (
    LocalDiskStorage,
    StorageBackend,
    StorageError,
    StoragePermanentError,
    StoredFileNotFoundError,
    build_storage,
)

PDF = b"%PDF-1.7\n" + b"x" * 10_000 + b"\n%%EOF\n"


def fixed_now() -> datetime:
    return datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


@pytest.fixture
def storage(tmp_path: Path) -> LocalDiskStorage:
    return LocalDiskStorage(tmp_path / "pdfs", now=fixed_now)


def visible_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_local_put_open_delete_round_trip(storage: LocalDiskStorage) -> None:
    stored = storage.put("job-123.pdf", PDF, "minatBakatUmum_rb5Y.pdf")

    assert stored.backend == "local"
    assert stored.location == "2026/01/15/job-123.pdf"
    assert stored.link is None
    assert stored.size == len(PDF)
    assert storage.exists(stored.location)
    with storage.open(stored.location) as handle:
        assert handle.read() == PDF

    storage.delete(stored.location)
    assert not storage.exists(stored.location)
    storage.delete(stored.location)  # idempotent


def test_local_is_a_storage_backend(storage: LocalDiskStorage) -> None:
    assert isinstance(storage, StorageBackend)


def test_local_put_shards_by_utc_date_and_key_prefix(storage: LocalDiskStorage) -> None:
    stored = storage.put("reports/minatBakatUmum/job-9.pdf", PDF, "a.pdf")

    assert stored.location == "2026/01/15/reports/minatBakatUmum/job-9.pdf"
    assert storage.path_of(stored.location) == storage.root / "2026" / "01" / "15" / "reports" / "minatBakatUmum" / (
        "job-9.pdf"
    )


def test_local_put_same_key_replaces_whole_file(storage: LocalDiskStorage) -> None:
    storage.put("job-1.pdf", b"first version, longer than the second", "a.pdf")
    stored = storage.put("job-1.pdf", b"second", "a.pdf")

    with storage.open(stored.location) as handle:
        assert handle.read() == b"second"
    assert visible_files(storage.root) == ["2026/01/15/job-1.pdf"]


def test_local_put_leaves_no_temp_files(storage: LocalDiskStorage) -> None:
    storage.put("job-1.pdf", PDF, "a.pdf")
    storage.put("job-2.pdf", PDF, "b.pdf")

    assert visible_files(storage.root) == ["2026/01/15/job-1.pdf", "2026/01/15/job-2.pdf"]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_local_put_crash_mid_write_leaves_no_file(
    storage: LocalDiskStorage, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    def crash(*args: object) -> None:
        raise KeyboardInterrupt("worker killed mid-write")

    monkeypatch.setattr(os, failing, crash)

    with pytest.raises(KeyboardInterrupt):
        storage.put("job-1.pdf", PDF, "a.pdf")

    monkeypatch.undo()
    assert visible_files(storage.root) == []
    assert not storage.exists("2026/01/15/job-1.pdf")


def test_local_remove_stale_temp_files_keeps_fresh_and_real_files(storage: LocalDiskStorage) -> None:
    storage.put("job-1.pdf", PDF, "a.pdf")
    folder = storage.root / "2026" / "01" / "15"
    stale, fresh = folder / ".job-2.pdf.abc123.tmp", folder / ".job-3.pdf.def456.tmp"
    stale.write_bytes(b"%PDF-1.7 half")
    fresh.write_bytes(b"%PDF-1.7 being written")
    os.utime(stale, (0, 0))

    assert storage.remove_stale_temp_files() == 1

    assert not stale.exists()
    assert fresh.exists()
    assert storage.exists("2026/01/15/job-1.pdf")


def test_local_put_crash_keeps_previous_version(storage: LocalDiskStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    storage.put("job-1.pdf", b"complete old file", "a.pdf")

    def crash(*args: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(StorageError, match="Input/output error"):
        storage.put("job-1.pdf", PDF, "a.pdf")
    monkeypatch.undo()

    with storage.open("2026/01/15/job-1.pdf") as handle:
        assert handle.read() == b"complete old file"
    assert visible_files(storage.root) == ["2026/01/15/job-1.pdf"]


def test_local_put_unwritable_root_is_permanent(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the root folder should be")
    storage = LocalDiskStorage(blocker, now=fixed_now)

    with pytest.raises(StoragePermanentError, match="cannot write"):
        storage.put("job-1.pdf", PDF, "a.pdf")


@pytest.mark.parametrize(
    "key",
    ["../escape.pdf", "a/../../escape.pdf", "/etc/passwd", "..", ".", ".hidden.pdf", "a//b.pdf", "a\\b.pdf", "", "a/"],
)
def test_local_put_rejects_traversal_and_unsafe_keys(storage: LocalDiskStorage, key: str) -> None:
    with pytest.raises(StoragePermanentError, match="not allowed|non-empty"):
        storage.put(key, PDF, "a.pdf")
    assert not storage.root.exists() or visible_files(storage.root) == []


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "2026/01/15/../../../x"])
def test_local_open_delete_exists_reject_traversal(storage: LocalDiskStorage, location: str) -> None:
    for call in (storage.open, storage.delete, storage.exists):
        with pytest.raises(StoragePermanentError):
            call(location)


def test_local_open_rejects_symlink_out_of_root(storage: LocalDiskStorage, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (storage.root / "2026").mkdir(parents=True)
    (storage.root / "2026" / "link.pdf").symlink_to(secret)

    with pytest.raises(StoragePermanentError, match="outside the storage root"):
        storage.open("2026/link.pdf")


def test_local_open_missing_file_raises_not_found(storage: LocalDiskStorage) -> None:
    with pytest.raises(StoredFileNotFoundError, match="no stored file"):
        storage.open("2026/01/15/missing.pdf")


def test_build_storage_default_is_local_under_pdf_dir(tmp_path: Path) -> None:
    storage = build_storage(Settings(data_dir=tmp_path))

    assert isinstance(storage, LocalDiskStorage)
    assert storage.root == (tmp_path / "pdfs").resolve()


def test_local_put_writes_private_files_and_folders(storage: LocalDiskStorage) -> None:
    stored = storage.put("report-1", b"%PDF-1.4", "report.pdf")
    path = storage.path_of(stored.location)
    assert path.stat().st_mode & 0o777 == 0o600
    folder = path.parent
    while folder != storage.root:
        assert folder.stat().st_mode & 0o777 == 0o700, folder
        folder = folder.parent
