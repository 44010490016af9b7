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


def _engine_with_table(tmp_path: Path):  # noqa: ANN202
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS events (who TEXT)"))
    return url, engine


def test_a_second_writer_waits_for_the_first_one_to_commit_then_goes_on(tmp_path: Path) -> None:
    import threading

    _, engine = _engine_with_table(tmp_path)
    order: list[str] = []
    first = engine.connect()
    first.begin()
    first.execute(text("INSERT INTO events VALUES ('first')"))  # first holds the writer lock now

    def second_writer() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO events VALUES ('second')"))
        order.append("second committed")

    thread = threading.Thread(target=second_writer)
    thread.start()
    thread.join(timeout=0.5)
    assert thread.is_alive() and order == []  # waiting in the queue, not failing with "database is locked"
    first.commit()
    order.append("first committed")
    first.close()  # back to the pool: the lock goes to the next writer
    thread.join(timeout=10)
    assert order == ["first committed", "second committed"]
    engine.dispose()


def test_the_writer_lock_is_shared_with_other_processes_and_freed_by_rollback(tmp_path: Path) -> None:
    import subprocess
    import sys

    url, engine = _engine_with_table(tmp_path)
    script = (
        "import sys; from sqlalchemy import text; from store.db import make_engine; "
        "e = make_engine(sys.argv[1]); c = e.connect(); c.begin(); "
        "c.execute(text(\"INSERT INTO events VALUES ('child')\")); print('holding', flush=True); "
        "sys.stdin.readline(); c.rollback(); c.close(); print('released', flush=True); sys.stdin.readline()"
    )
    child = subprocess.Popen([sys.executable, "-c", script, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert child.stdout.readline().strip() == "holding"
        lock_file = Path(url.removeprefix("sqlite:///") + ".writer.lock")
        import fcntl
        import os

        fd = os.open(lock_file, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held_elsewhere = False
            except BlockingIOError:
                held_elsewhere = True
            assert held_elsewhere  # the child's write transaction holds the file lock
            child.stdin.write("\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "released"
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free after the child's rollback
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO events VALUES ('parent')"))
    finally:
        child.stdin.close()
        child.wait(timeout=10)
        engine.dispose()


def test_an_in_memory_database_needs_no_writer_queue() -> None:
    engine = make_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
        assert connection.execute(text("SELECT x FROM t")).scalar() == 1
    engine.dispose()
