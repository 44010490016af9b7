"""SQLite connections that wait for another writer's lock by polling with `time.sleep`, not in SQLite.

SQLite's own wait (its busy handler, `PRAGMA busy_timeout`) sleeps inside the C library: under the API's
gevent workers that stops every request of the process, not only the one that waits, and its sleeps grow
1, 2, 5, 10, 15 ms..., so a lock held for 3 ms costs the waiter 8. These connections turn SQLite's wait
off and retry a write that found the database locked after a short `time.sleep`, which gevent makes a
cooperative sleep: the process's other requests go on meanwhile, and the waiter gets the lock within
`MAX_STEP` of its release.

Only the first statement of a transaction is retried: it asks for the write lock with nothing done
yet (pysqlite begins a transaction just before the first INSERT, UPDATE or DELETE), so running it again
is what SQLite's busy handler would do. A statement inside a transaction that finds the database locked
is raised at once, as SQLite itself does for a stale snapshot.

Built on the sqlite3 module's documented `factory` argument of `connect` (SQLAlchemy passes it through
`connect_args`); tests/store/test_sqlite_wait.py pins what this relies on.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

FIRST_STEP = 0.00025  # seconds of the first sleep; each next one doubles, up to MAX_STEP
MAX_STEP = 0.002
# Locked by another connection (or by one rebuilding the WAL index after a crash): waiting helps. Not
# SQLITE_BUSY_SNAPSHOT (the transaction read an older version): only starting over does.
WAIT_FOR = frozenset({"SQLITE_BUSY", "SQLITE_BUSY_RECOVERY"})
T = TypeVar("T")


class PollingConnection(sqlite3.Connection):
    """A connection whose cursors wait for the write lock by polling (see the module's docstring).

    `connect`'s `timeout` (seconds) is how long a statement waits in all, as with a plain connection.
    """

    def __init__(self, *args: Any, timeout: float = 5.0, **kwargs: Any) -> None:
        super().__init__(*args, timeout=0, **kwargs)  # SQLite's own wait off: this class waits instead
        self.lock_timeout = timeout

    def cursor(self, factory: type[sqlite3.Cursor] | None = None) -> sqlite3.Cursor:  # type: ignore[override]
        """A cursor whose `execute` and `executemany` wait for the write lock by polling."""
        return super().cursor(factory or PollingCursor)

    # sqlite3's own shortcuts make their cursor in C, without `cursor()`: these do what its documentation says.
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        """A new cursor's `execute`."""
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:  # type: ignore[override]
        """A new cursor's `executemany`."""
        return self.cursor().executemany(sql, seq_of_parameters)


class PollingCursor(sqlite3.Cursor):
    """`execute` and `executemany` retried while the first statement of a transaction finds the database locked."""

    connection: PollingConnection  # made only by PollingConnection.cursor

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        """`sqlite3.Cursor.execute`, waiting for the write lock by polling."""
        return _patiently(self.connection, lambda: super(PollingCursor, self).execute(sql, parameters))

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:  # type: ignore[override]
        """`sqlite3.Cursor.executemany`, waiting for the write lock by polling."""
        return _patiently(self.connection, lambda: super(PollingCursor, self).executemany(sql, seq_of_parameters))


def _patiently(connection: PollingConnection, statement: Callable[[], T]) -> T:
    first_of_transaction = not connection.in_transaction
    deadline = time.monotonic() + connection.lock_timeout
    step = FIRST_STEP
    while True:
        try:
            return statement()
        except sqlite3.OperationalError as error:
            if not (first_of_transaction and error.sqlite_errorname in WAIT_FOR) or time.monotonic() > deadline:
                raise
        time.sleep(step)
        step = min(step * 2, MAX_STEP)
