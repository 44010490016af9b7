"""The start banner's SQL line (the connections one host can open, without the password) and the PDF workers'
CPU priority."""

from __future__ import annotations

from config import Settings
from ops.run import sql_connections_line, worker_priority

POSTGRES = "postgresql+psycopg://pdfjobs:s3cret-password@db.internal:5432/pdfjobs"


def test_banner_counts_every_sql_process_of_the_host_times_its_pool() -> None:
    settings = Settings(database_url=POSTGRES, api_processes=3, workers=4, webhook_workers=2,
                        db_pool_size=4, db_max_overflow=6)
    line = sql_connections_line(settings)
    # 3 API + 4 PDF workers + 2 senders + 1 scheduler = 10 processes, each up to 4 + 6 connections
    assert "up to 100 connections from this host (10 processes x (DB_POOL_SIZE 4 + DB_MAX_OVERFLOW 6))" in line
    assert "s3cret-password" not in line and "db.internal:5432/pdfjobs" in line


def test_banner_counts_only_the_programs_of_the_host_s_roles() -> None:
    settings = Settings(database_url=POSTGRES, roles=("worker",), workers=5)
    assert "up to 75 connections from this host (5 processes x" in sql_connections_line(settings)


def test_banner_says_sqlite_is_one_host_only() -> None:
    assert "SQLite: one host only" in sql_connections_line(Settings())


def test_banner_says_how_the_workers_yield_the_cpu() -> None:
    assert worker_priority(Settings()) == "under SCHED_IDLE, nice 10"
    assert worker_priority(Settings(worker_sched_idle=False, worker_nice=0)) == "nice 0"
