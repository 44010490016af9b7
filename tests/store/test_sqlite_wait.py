"""The API's SQLite connections wait for another writer's lock by polling (store/sqlite_wait.py).

Pinned here: SQLAlchemy hands `connect_args["factory"]` to sqlite3; SQLite's own wait stops a gevent
process whole while polling lets its other greenlets run; only a transaction's first statement is retried.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from store.db import make_engine
from store.sqlite_wait import PollingConnection
from tests.conftest import PROJECT_DIR

# A gevent process (as the API's gunicorn workers are) writes while the test holds the write lock; a
# greenlet ticks every 10 ms meanwhile. It prints the ticks counted while the write waited.
GEVENT_WRITER = """
from gevent import monkey; monkey.patch_all()
import json, sys, time, gevent
from sqlalchemy import text
from store.db import make_engine
engine = make_engine(sys.argv[1], polling_lock_wait=sys.argv[2] == "polling")
with engine.connect() as connection:  # connected before the lock is taken: the wait is the write's alone
    connection.exec_driver_sql("SELECT 1")
    connection.commit()
    ticks, writing = [0], [True]
    def tick():
        while writing[0]:
            time.sleep(0.01)
            ticks[0] += writing[0]
    ticker = gevent.spawn(tick)
    print("ready", flush=True)
    sys.stdin.readline()  # the test holds the lock now
    started = time.monotonic()
    with connection.begin():
        connection.execute(text("INSERT INTO t VALUES (1)"))
    writing[0] = False
    ticker.join()
print(json.dumps({"ticks": ticks[0], "waited": time.monotonic() - started}))
"""


@pytest.fixture
def url(tmp_path: Path) -> str:
    database = tmp_path / "wait.db"
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (x INTEGER)")
    return f"sqlite:///{database}"


def held_lock(url: str) -> sqlite3.Connection:
    """A connection holding the database's write lock until it commits."""
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def write_beside_a_held_lock(url: str, mode: str, hold: float = 0.5) -> dict[str, float]:
    process = subprocess.Popen([sys.executable, "-c", GEVENT_WRITER, url, mode], cwd=PROJECT_DIR, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout.readline().strip() == "ready"
    holder = held_lock(url)
    process.stdin.write("go\n")
    process.stdin.flush()
    time.sleep(hold)
    holder.commit()
    holder.close()
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    return json.loads(out)


def test_the_api_engine_connects_with_the_polling_connection_and_sqlite_waiting_off(url: str) -> None:
    engine = make_engine(url, polling_lock_wait=True)
    with engine.connect() as connection:
        assert isinstance(connection.connection.dbapi_connection, PollingConnection)
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 0
    engine.dispose()
    stock = make_engine(url)
    with stock.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    stock.dispose()


def test_a_polling_wait_lets_the_other_greenlets_run_where_sqlites_own_wait_stops_them(url: str) -> None:
    polling = write_beside_a_held_lock(url, "polling")
    stock = write_beside_a_held_lock(url, "stock")
    assert polling["waited"] >= 0.4 and stock["waited"] >= 0.4  # both waited for the lock, then wrote
    assert polling["ticks"] >= 20  # ~50 ticks of 10 ms in 0.5 s
    assert stock["ticks"] <= 2  # SQLite's busy handler sleeps in C: the whole process stood still
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        assert connection.execute("SELECT count(*) FROM t").fetchone()[0] == 2


def test_a_lock_held_past_the_timeout_fails_as_sqlite_would(url: str) -> None:
    holder = held_lock(url)
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), factory=PollingConnection, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        connection.execute("INSERT INTO t VALUES (1)")
    assert 0.3 <= time.monotonic() - started < 2
    holder.rollback()
    connection.execute("INSERT INTO t VALUES (2)")  # the lock is free: the open transaction now writes
    connection.commit()
    assert connection.execute("SELECT x FROM t").fetchall() == [(2,)]


def test_a_locked_statement_inside_a_transaction_is_not_retried(url: str) -> None:
    """A transaction that read before another connection committed cannot write (SQLITE_BUSY_SNAPSHOT):
    waiting would never help, so it fails at once and the caller starts over."""
    reader = sqlite3.connect(url.removeprefix("sqlite:///"), factory=PollingConnection, timeout=10,
                             isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # its snapshot starts here
    with sqlite3.connect(url.removeprefix("sqlite:///")) as other:
        other.execute("INSERT INTO t VALUES (1)")
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError) as failure:
        reader.execute("INSERT INTO t VALUES (2)")
    assert failure.value.sqlite_errorname == "SQLITE_BUSY_SNAPSHOT"
    assert time.monotonic() - started < 1
    reader.execute("ROLLBACK")


def test_the_engine_uses_it_for_reads_and_writes(url: str) -> None:
    engine = make_engine(url, polling_lock_wait=True)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (:x)"), [{"x": 1}, {"x": 2}])  # executemany
    with engine.connect() as connection:
        assert connection.execute(text("SELECT sum(x) FROM t")).scalar() == 3
    engine.dispose()
