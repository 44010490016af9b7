"""Run the whole service (supervisord, embedded Redis, API, workers) in a scratch DATA_DIR.

Used by the end-to-end tests and the benchmarks: the same config and programs as `make run`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import redis
from sqlalchemy import Engine

from config import Settings
from jobs.runtime import connect_redis
from ops.supervise import prepare_data_dir, start_supervisord, supervisor_env, supervisorctl, write_config
from store.db import make_engine, make_session_factory, migrate


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def terminate_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM `process` and wait up to `timeout` s; then SIGKILL its process group."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class RunningService:
    """The service under supervisord, started with `env` on top of the current environment."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, *, log_path: Path | None = None):
        self.data_dir = data_dir.resolve()
        self.port = free_port()
        self.env = {
            **os.environ,
            "DATA_DIR": str(self.data_dir),
            "PORT": str(self.port),
            "RQ_DASHBOARD_PASSWORD": "dashboard-test",
            # a stop must not wait 30 s on the idle keep-alive connections the test's clients left open
            "GUNICORN_CMD_ARGS": "--graceful-timeout 3",
            **(env or {}),
        }
        self.settings = Settings.from_env(self.env)
        self.log_path = log_path or self.data_dir / "service.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.engine: Engine | None = None
        self.base_url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> RunningService:
        """Migrate, start supervisord and wait until /readyz answers 200 (a host without the API: until
        every program runs)."""
        prepare_data_dir(self.settings)
        migrate(self.settings.sqlalchemy_url)
        env = supervisor_env(self.settings, self.env)
        self.conf = write_config(self.settings, env)
        # closed in stop(); private like every file of DATA_DIR
        self.log_file = os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        self.process = start_supervisord(self.conf, env, stdout=self.log_file, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        if "api" in self.settings.roles:
            self.wait_ready(timeout)
        else:
            self.wait_running(timeout)
        return self

    def wait_running(self, timeout: float = 60) -> None:
        """Block until supervisorctl shows every program RUNNING."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"supervisord exited; see {self.log_path}")
            lines = self.ctl("status").splitlines()
            if lines and all(" RUNNING " in f" {line} " for line in lines):
                return
            time.sleep(0.2)
        raise TimeoutError(f"programs not running after {timeout} s; see {self.log_path}")

    def kill_host(self) -> list[int]:
        """SIGKILL supervisord and every process it started at once, as if the host lost power."""
        pids = self.leftover_pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process is not None:
            self.process.wait()
        return pids

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until /readyz answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"supervisord exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"service not ready after {timeout} s; see {self.log_path}")

    def ctl(self, *args: str) -> str:
        """supervisorctl output for ARGS."""
        result = supervisorctl(self.conf, *args)
        return result.stdout + result.stderr

    def program_pids(self, name: str) -> list[int]:
        """PIDs of the running processes of a supervisor program (e.g. 'pdf_worker')."""
        pids = []
        for line in self.ctl("status").splitlines():
            parts = line.split()
            if parts and parts[0].split(":")[0] == name and "RUNNING" in line and "pid" in parts:
                pids.append(int(parts[parts.index("pid") + 1].rstrip(",")))
        return pids

    def redis(self) -> redis.Redis:
        """A client of the service's Redis (through Sentinel when REDIS_URL names it)."""
        if self.settings.redis_url:
            return connect_redis(self.settings, socket_timeout=None)
        return redis.Redis(unix_socket_path=str(self.settings.embedded_redis_dir / "redis.sock"))

    def session_factory(self):  # noqa: ANN201
        """A SQL session factory on the service's database (one engine, closed by stop())."""
        if self.engine is None:
            self.engine = make_engine(self.settings.sqlalchemy_url)
        return make_session_factory(self.engine)

    def stop(self, timeout: float = 90) -> int | None:
        """SIGTERM supervisord (it stops every program), kill the group if it lingers."""
        if self.process is None:
            return None
        terminate_group(self.process, timeout)
        self._kill_leftovers()
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None
        self.log_file.close()
        return self.process.returncode

    def leftover_pids(self) -> list[int]:
        """Processes still alive in supervisord's session (each program has its own group, not session)."""
        if self.process is None:
            return []
        return session_members(self.process.pid)

    def _kill_leftovers(self) -> None:
        for pid in self.leftover_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def __enter__(self) -> RunningService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def session_members(session_id: int) -> list[int]:
    """PIDs of live (non-zombie) processes whose session id is `session_id` (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, session = fields[0], int(fields[3])
        if session == session_id and state != "Z":
            members.append(int(entry.name))
    return members
