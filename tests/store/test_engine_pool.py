"""The PostgreSQL engine of a process: DB_POOL_SIZE + DB_MAX_OVERFLOW connections, DB_PREPARED_STATEMENTS."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from config import Settings
from jobs.runtime import build_runtime


def _runtime(url: str, tmp_path: Path, **changes: object):  # noqa: ANN202
    return build_runtime(Settings(data_dir=tmp_path, database_url=url, **changes))


def test_a_process_opens_at_most_pool_size_plus_overflow_connections(postgres_tests_database: str, tmp_path) -> None:
    rt = _runtime(postgres_tests_database, tmp_path, db_pool_size=2, db_max_overflow=1)
    connections = [rt.engine.connect() for _ in range(3)]
    try:
        pids = {c.execute(text("SELECT pg_backend_pid()")).scalar() for c in connections}
        assert len(pids) == 3  # three server sessions: the pool's two and one overflow
        assert rt.engine.pool.size() == 2 and rt.engine.pool.overflow() == 1  # the overflow is used up
    finally:
        for connection in connections:
            connection.close()
        rt.engine.dispose()


def test_prepared_statements_can_be_turned_off_for_a_pooler(postgres_tests_database: str, tmp_path) -> None:
    default = _runtime(postgres_tests_database, tmp_path)
    pooler = _runtime(postgres_tests_database, tmp_path, db_prepared_statements=False)
    try:
        with default.engine.connect() as on, pooler.engine.connect() as off:
            assert on.connection.driver_connection.prepare_threshold == 5  # psycopg's default
            assert off.connection.driver_connection.prepare_threshold is None  # never prepares
            for _ in range(10):  # past the threshold: only the default connection has prepared it
                on.execute(text("SELECT 1"))
                off.execute(text("SELECT 1"))
            prepared = "SELECT count(*) FROM pg_prepared_statements"
            assert on.execute(text(prepared)).scalar() >= 1 and off.execute(text(prepared)).scalar() == 0
    finally:
        default.engine.dispose()
        pooler.engine.dispose()
