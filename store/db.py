"""Engine and session factory, and schema migration on start."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from store.sqlite_wait import PollingConnection

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
POOL_SIZE = 5  # DB_POOL_SIZE's default (config/settings.py)
MAX_OVERFLOW = 10  # DB_MAX_OVERFLOW's default
# Seconds libpq waits for a PostgreSQL server that does not answer (its own default waits forever): a
# request meets an unreachable database with a 503 within this, not a hung gunicorn worker.
CONNECT_TIMEOUT = 5
# The PostgreSQL advisory lock that migrations hold (any fixed number; "pdfjobs" in ASCII).
MIGRATION_LOCK_KEY = 0x7064666A6F6273


def make_engine(url: str, *, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW, pooled: bool = True,
                wal_checkpoints: bool = True, prepared_statements: bool = True,
                polling_lock_wait: bool = False) -> Engine:
    """Create the SQLAlchemy engine; SQLite gets WAL and a busy timeout for many processes.

    PostgreSQL: `pool_size` connections kept open, up to `max_overflow` more under load (DB_POOL_SIZE,
    DB_MAX_OVERFLOW); each is tested before use (`pool_pre_ping`), so the connections a database
    restart broke are replaced instead of failing one request each. `prepared_statements=False`
    (DB_PREPARED_STATEMENTS) keeps psycopg from preparing statements on the server: a pooler in
    transaction mode (PgBouncer before 1.21) runs the next transaction on another server connection,
    where the prepared statement does not exist.

    Several processes write one SQLite file (API, PDF workers, webhook sender, scheduler): a writer
    that finds the database locked waits in SQLite's busy handler, up to BUSY_TIMEOUT, for the other
    one's commit. pysqlite begins a transaction at its first INSERT/UPDATE/DELETE, so a write
    transaction asks for the lock with its first write and never turns an older read into a write.

    `polling_lock_wait=True` (the API): a writer waits for the lock in `time.sleep`, which gevent makes
    cooperative, instead of in SQLite's busy handler, which stops the whole gevent process
    (store/sqlite_wait.py).

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
            connect_args={"timeout": BUSY_TIMEOUT, "check_same_thread": False,
                          **({"factory": PollingConnection} if polling_lock_wait else {})},
            poolclass=None if pooled else NullPool,
            hide_parameters=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        if not wal_checkpoints:
            event.listen(engine, "connect", _no_autocheckpoint)
        return engine
    connect_args: dict[str, object] = {}
    if "connect_timeout" not in make_url(url).query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    if not prepared_statements and make_url(url).get_driver_name() == "psycopg":
        connect_args["prepare_threshold"] = None
    if not pooled:
        return create_engine(url, poolclass=NullPool, connect_args=connect_args, hide_parameters=True)
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow,
                         connect_args=connect_args, hide_parameters=True)


BUSY_TIMEOUT = 30.0  # seconds an SQLite writer waits for another one's commit before "database is locked"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
    cursor = dbapi_connection.cursor()
    # WAL lets readers run while a writer commits; NORMAL sync is durable across process crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    if not isinstance(dbapi_connection, PollingConnection):  # which waits by itself, not in SQLite
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
    cursor.close()


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
    """Bring the schema to the newest Alembic revision (idempotent), holding the migration lock.

    Hosts that start at once on an empty database take turns: the first migrates, the others then
    find the schema at head. Every migration runs in one transaction, which on PostgreSQL also holds
    the lock (a transaction-level advisory lock: it ends with the transaction, whatever happens to the
    process, and works through PgBouncer in transaction mode); SQLite's is a file lock beside the database.
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    engine = make_engine(url, pooled=False, prepared_statements=False)  # one connection, each statement run once
    try:
        with engine.connect() as connection, connection.begin(), migration_lock(connection):
            config.attributes["connection"] = connection  # store/migrations/env.py migrates in this transaction
            command.upgrade(config, "head")
    finally:
        engine.dispose()


@contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Hold the migration lock of the connection's database until its transaction ends (PostgreSQL) or we leave."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        yield
        return
    database = connection.engine.url.database if connection.dialect.name == "sqlite" else None
    if not database or database == ":memory:":  # nothing another process could migrate at the same time
        yield
        return
    # 0600 like every file in DATA_DIR (docs/security.md), whatever the umask of the process that migrates
    lock_fd = os.open(f"{database}.migrate-lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(lock_fd, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield
