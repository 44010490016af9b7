"""Engine and session factory, and schema migration on start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str, *, pooled: bool = True, wal_checkpoints: bool = True) -> Engine:
    """Create the SQLAlchemy engine; SQLite gets WAL and a busy timeout for many processes.

    Several processes write one SQLite file (API, PDF workers, webhook sender, scheduler): a writer
    that finds the database locked waits in SQLite's busy handler, up to BUSY_TIMEOUT, for the other
    one's commit. pysqlite begins a transaction at its first INSERT/UPDATE/DELETE, so a write
    transaction asks for the lock with its first write and never turns an older read into a write.

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
            connect_args={"timeout": BUSY_TIMEOUT, "check_same_thread": False},
            poolclass=None if pooled else NullPool,
            hide_parameters=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        if not wal_checkpoints:
            event.listen(engine, "connect", _no_autocheckpoint)
        return engine
    if not pooled:
        return create_engine(url, poolclass=NullPool, hide_parameters=True)
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, hide_parameters=True)


BUSY_TIMEOUT = 30.0  # seconds an SQLite writer waits for another one's commit before "database is locked"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
    cursor = dbapi_connection.cursor()
    # WAL lets readers run while a writer commits; NORMAL sync is durable across process crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
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
    """Bring the schema to the newest Alembic revision (idempotent)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")
