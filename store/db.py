"""Engine and session factory, and schema migration on start."""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str, *, pooled: bool = True, wal_checkpoints: bool = True) -> Engine:
    """Create the SQLAlchemy engine; SQLite gets WAL and a busy timeout for many processes.

    `wal_checkpoints=False` (the API): SQLite's automatic WAL checkpoint runs inside whichever commit
    crosses 1,000 pages and fsyncs the database there, a stall of tens of ms for that request and,
    under gevent, for every request of the process. The API leaves it to `checkpoint` (the scheduler
    runs it every second) and to the workers' own commits.

    Errors leave the statements' parameters out of their message (`hide_parameters`): they hold
    report data and callback URLs, and error messages go to the logs.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": WRITER_WAIT, "check_same_thread": False},
            poolclass=None if pooled else NullPool,
            hide_parameters=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        if not wal_checkpoints:
            event.listen(engine, "connect", _no_autocheckpoint)
        database = make_url(url).database
        if database and database != ":memory:":  # one process only for an in-memory database: no queue
            WriterQueue(Path(database + ".writer.lock")).attach(engine)
        return engine
    if not pooled:
        return create_engine(url, poolclass=NullPool, hide_parameters=True)
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, hide_parameters=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
    cursor = dbapi_connection.cursor()
    # WAL lets readers run while a writer commits; NORMAL sync is durable across process crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(WRITER_WAIT * 1000)}")
    cursor.close()


class WriterQueue:
    """Lets one write transaction at a time into an SQLite database, across processes, without sleeping.

    SQLite allows one writer; a second one waits in SQLite's busy handler, which sleeps 1, 2, 5, 10 ...
    ms between tries and blocks a gevent process whole while it does. Here a writer first takes this
    process's lock (cooperative under gevent), then an flock on a file next to the database: the
    kernel wakes the next writer the moment the lock is released. Taken at a transaction's first
    INSERT/UPDATE/DELETE, released when its connection goes back to the pool (after commit or
    rollback). Re-entrant, so a nested write in the same thread or greenlet fails as it did before
    (SQLite's busy timeout) instead of waiting for itself.
    """

    _WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")

    def __init__(self, path: Path):
        self.path = path
        self.local = threading.RLock()
        self.depth = 0
        self._fd: int | None = None
        self._pid: int | None = None

    def attach(self, engine: Engine) -> None:
        """Hook the queue into `engine`'s statement and pool events."""
        event.listen(engine, "before_cursor_execute", self._before_execute)
        event.listen(engine.pool, "checkin", self._on_checkin)
        _WRITER_QUEUES[engine] = self

    def _file(self) -> int:
        if self._pid != os.getpid():  # after a fork each process needs its own open file description
            self._fd, self._pid = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600), os.getpid()
        return self._fd

    def _before_execute(self, connection, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001, PLR0913
        if statement.lstrip()[:7].upper().startswith(self._WRITES):
            self.hold(connection.info)

    def hold(self, info: dict[Any, Any]) -> None:
        """Take the lock for the pooled connection whose `info` this is, unless it holds it already;
        released when the connection is checked in."""
        if info.get(_HOLDS):
            return
        if not self.local.acquire(timeout=WRITER_WAIT):  # as SQLite's busy timeout would have failed
            raise OperationalError(None, None, TimeoutError(f"database is locked ({WRITER_WAIT} s)"))
        try:
            if self.depth == 0:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
            self.depth += 1
        except BaseException:
            self.local.release()
            raise
        info[_HOLDS] = True

    def _on_checkin(self, dbapi_connection, record) -> None:  # noqa: ANN001
        if record is None or not record.info.pop(_HOLDS, False):
            return
        self.depth -= 1
        if self.depth == 0:
            fcntl.flock(self._file(), fcntl.LOCK_UN)
        self.local.release()


_HOLDS = "pdfjobs_holds_writer_lock"
WRITER_WAIT = 30.0  # seconds, the busy timeout SQLite connections get
_WRITER_QUEUES: weakref.WeakKeyDictionary[Engine, WriterQueue] = weakref.WeakKeyDictionary()


def writer_queue(engine: Engine) -> WriterQueue | None:
    """The writer lock of an SQLite file database's engine (None for other engines)."""
    return _WRITER_QUEUES.get(engine)


def _no_autocheckpoint(dbapi_connection, _record) -> None:  # noqa: ANN001
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def checkpoint(engine: Engine) -> None:
    """Copy SQLite's write-ahead log into the database (PASSIVE: never waits for readers or writers)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def migrate(url: str) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")
