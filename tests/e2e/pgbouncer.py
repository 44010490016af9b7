"""A PgBouncer in transaction mode on 127.0.0.1 in front of a test PostgreSQL (the system's pgbouncer binary)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from ops.postgres_server import SUPERUSER, LocalPostgres, free_port, server_user

BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def available() -> bool:
    """Whether a pgbouncer binary is installed (Debian: apt-get install pgbouncer)."""
    return Path(BINARY).exists()


class PgBouncer:
    """pgbouncer with pool_mode=transaction: each transaction may run on another server connection."""

    def __init__(self, server: LocalPostgres, *, pool_size: int = 10):
        self.server = server
        self.directory = Path(tempfile.mkdtemp(prefix="pdfjobs-pgbouncer-"))
        self.port = free_port()
        self.pool_size = pool_size
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` through the bouncer."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 30) -> PgBouncer:
        """Write the configuration, start pgbouncer and wait until it answers."""
        (self.directory / "userlist.txt").write_text(f'"{SUPERUSER}" ""\n')
        conf = self.directory / "pgbouncer.ini"
        conf.write_text("\n".join([
            "[databases]",
            f"* = host=127.0.0.1 port={self.server.port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {self.directory / 'userlist.txt'}",
            "pool_mode = transaction",
            "max_client_conn = 1000",
            f"default_pool_size = {self.pool_size}",
            f"logfile = {self.directory / 'pgbouncer.log'}",
            "",
        ]))
        user = server_user()
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in (self.directory, *self.directory.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.process = subprocess.Popen([BINARY, str(conf)], user=user, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not start; see {self.directory / 'pgbouncer.log'}")
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        try:
            with psycopg.connect(self.url("postgres").replace("+psycopg", ""), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        """Stop pgbouncer and remove its folder."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
