"""Hosts starting at once on an empty database all come up: migrations take turns under a lock."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from store.db import MIGRATIONS_DIR, migrate
from tests.conftest import DATABASES, PROJECT_DIR, own_database

# Each child imports everything first, says so, then waits for the word to migrate: all three start
# their migration within the same few milliseconds.
MIGRATE_ON_GO = (
    "import sys; from store.db import migrate; print('ready', flush=True); "
    "sys.stdin.readline(); migrate(sys.argv[1]); print('migrated', flush=True)"
)
PROCESSES = 3


@pytest.fixture(params=DATABASES)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with no tables at all."""
    for url in own_database(request, request.param):
        yield url or f"sqlite:///{tmp_path / 'empty.sqlite3'}"


def _head() -> str:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


def _migrate_at_once(url: str) -> list[subprocess.CompletedProcess[str]]:
    children = [
        subprocess.Popen([sys.executable, "-c", MIGRATE_ON_GO, url], cwd=PROJECT_DIR, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(PROCESSES)
    ]
    for child in children:
        assert child.stdout.readline().strip() == "ready"
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(child.args, child.returncode, out, err))
    return results


@pytest.mark.parametrize("trial", range(3))
def test_three_processes_migrating_one_empty_database_at_once_all_succeed(empty_database: str, trial: int) -> None:
    results = _migrate_at_once(empty_database)
    failures = [result.stderr[-2000:] for result in results if result.returncode != 0]
    assert not failures, failures
    assert all(result.stdout.split() == ["migrated"] for result in results)
    engine = create_engine(empty_database)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [_head()]
        assert {"pdf_job_results", "webhook_deliveries"} <= set(inspect(connection).get_table_names())
    engine.dispose()


def test_migrating_again_is_a_no_op_and_frees_the_lock(empty_database: str) -> None:
    migrate(empty_database)
    migrate(empty_database)  # a second host later: the lock was given back, the schema is at head
    engine = create_engine(empty_database)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head()
    engine.dispose()
