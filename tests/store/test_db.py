"""SQLite engine settings: WAL, WAL checkpoints kept out of the API's requests, writers waiting for each other."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
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


# Both ways of waiting for another writer's lock: SQLite's busy handler, and the API's polling (store/sqlite_wait.py).
LOCK_WAITS = pytest.mark.parametrize("polling", [False, True], ids=["busy-handler", "polling"])


def _engine_with_table(tmp_path: Path, polling: bool = False):  # noqa: ANN202
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = make_engine(url, polling_lock_wait=polling)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS events (who TEXT)"))
    return url, engine


def _events(engine) -> list[str]:  # noqa: ANN001
    with engine.connect() as connection:
        return sorted(connection.execute(text("SELECT who FROM events")).scalars())


@LOCK_WAITS
def test_a_second_writer_waits_for_the_first_one_to_commit_then_goes_on(tmp_path: Path, polling: bool) -> None:
    _, engine = _engine_with_table(tmp_path, polling)
    order: list[str] = []
    first = engine.connect()
    first.begin()
    first.execute(text("INSERT INTO events VALUES ('first')"))  # first holds SQLite's write lock now

    def second_writer() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO events VALUES ('second')"))
        order.append("second committed")

    thread = threading.Thread(target=second_writer)
    thread.start()
    thread.join(timeout=0.5)
    assert thread.is_alive() and order == []  # waiting in the busy handler, not failing with "database is locked"
    first.commit()
    order.append("first committed")
    first.close()
    thread.join(timeout=10)
    assert order == ["first committed", "second committed"]
    assert _events(engine) == ["first", "second"]
    engine.dispose()


@LOCK_WAITS
def test_a_writer_waits_for_another_process_s_write_transaction(tmp_path: Path, polling: bool) -> None:
    url, engine = _engine_with_table(tmp_path, polling)
    script = (
        "import sys; from sqlalchemy import text; from store.db import make_engine; "
        "e = make_engine(sys.argv[1]); c = e.connect(); c.begin(); "
        "c.execute(text(\"INSERT INTO events VALUES ('child')\")); print('holding', flush=True); "
        "sys.stdin.readline(); c.rollback(); c.close(); print('released', flush=True)"
    )
    child = subprocess.Popen([sys.executable, "-c", script, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert child.stdout.readline().strip() == "holding"
        parent = threading.Thread(target=_insert, args=(engine, "parent"))
        parent.start()
        parent.join(timeout=0.5)
        assert parent.is_alive()  # the child's write transaction holds the lock
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "released"
        parent.join(timeout=10)
        assert not parent.is_alive()
        assert _events(engine) == ["parent"]  # the child rolled back, the parent's insert went through
    finally:
        child.stdin.close()
        child.wait(timeout=10)
        engine.dispose()


def _insert(engine, who: str) -> None:  # noqa: ANN001
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO events VALUES (:who)"), {"who": who})


@LOCK_WAITS
def test_a_read_before_the_first_write_does_not_hold_an_old_snapshot(tmp_path: Path, polling: bool) -> None:
    # pysqlite begins the transaction at the first INSERT/UPDATE/DELETE, so a read-then-write
    # transaction (the sender's held claims) asks for the write lock with a fresh snapshot. Had the
    # read begun the transaction, this write would fail at once (SQLITE_BUSY_SNAPSHOT: "database is
    # locked", no busy wait), since another connection committed in between.
    _, engine = _engine_with_table(tmp_path, polling)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM events")).scalar() == 0
        _insert(engine, "other")  # another connection's commit, after our read
        connection.execute(text("INSERT INTO events VALUES ('ours')"))
    assert _events(engine) == ["other", "ours"]
    engine.dispose()


def test_an_in_memory_database_works_with_the_same_settings() -> None:
    engine = make_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
        assert connection.execute(text("SELECT x FROM t")).scalar() == 1
    engine.dispose()
