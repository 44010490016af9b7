"""SQLite engine settings: WAL, and WAL checkpoints kept out of the API's requests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from store.db import checkpoint, make_engine, migrate


def _pragma(engine, name: str) -> int:  # noqa: ANN001
    with engine.connect() as connection:
        return connection.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_api_engine_leaves_wal_checkpoints_to_checkpoint(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    migrate(url)
    api_engine = make_engine(url, wal_checkpoints=False)
    worker_engine = make_engine(url)
    assert _pragma(api_engine, "journal_mode") == "wal"
    assert _pragma(api_engine, "wal_autocheckpoint") == 0
    assert _pragma(worker_engine, "wal_autocheckpoint") == 1000  # SQLite's default
    with api_engine.begin() as connection:
        connection.execute(text("CREATE TABLE filler (blob TEXT)"))
        for _ in range(2000):  # ~2,000 pages: past the 1,000 at which SQLite would checkpoint itself
            connection.execute(text("INSERT INTO filler VALUES (:b)"), {"b": "x" * 4000})
    database, wal = tmp_path / "jobs.db", tmp_path / "jobs.db-wal"
    assert wal.stat().st_size > 4_000_000 and database.stat().st_size < 1_000_000  # all still in the log
    checkpoint(api_engine)
    assert database.stat().st_size > 4_000_000  # copied into the database by the checkpoint
    api_engine.dispose()
    worker_engine.dispose()


def test_checkpoint_is_a_no_op_for_other_databases() -> None:
    class NotSqlite:
        class dialect:  # noqa: N801
            name = "postgresql"

    checkpoint(NotSqlite())  # type: ignore[arg-type]
