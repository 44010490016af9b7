"""Starting supervisord with the project's config: shared by `make run`, the tests and the benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from config import Settings
from jobs.webhook_relay import attempt_timeout
from ops import embedded_redis

PROJECT_DIR = Path(__file__).resolve().parent.parent
SUPERVISOR_CONF = PROJECT_DIR / "supervisor" / "supervisord.conf"


def supervisor_env(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment supervisord and its programs run with (the ENV_ names of supervisord.conf)."""
    env = dict(os.environ if base is None else base)
    data_dir = settings.data_dir.resolve()
    embedded = settings.redis_url is None
    env.update(
        PROJECT_DIR=str(PROJECT_DIR),
        PYTHON=sys.executable,
        DATA_DIR=str(data_dir),
        LOG_DIR=str(settings.log_dir.resolve()),
        SUPERVISOR_SOCKET=str(data_dir / "supervisor.sock"),
        SUPERVISOR_PIDFILE=str(data_dir / "supervisord.pid"),
        EMBEDDED_REDIS="true" if embedded else "false",
        REDIS_SERVER_BIN=str(embedded_redis.redis_server_binary()) if embedded else "/bin/true",
        REDIS_CONF=str((settings.embedded_redis_dir / "redis.conf").resolve()),
        HOST=settings.host,
        PORT=str(settings.port),
        API_PROCESSES=str(settings.api_processes),
        WORKERS=str(settings.workers),
        WEBHOOK_WORKERS=str(settings.webhook_workers),
        WEBHOOK_STOP_WAIT_SECS=str(attempt_timeout(settings) + 30),
        STOP_WAIT_SECS=str(settings.job_timeout + 30),
        PYTHONUNBUFFERED="1",
    )
    return env


def prepare_data_dir(settings: Settings) -> None:
    """Create DATA_DIR's folders and, for the embedded Redis, its config."""
    for folder in (settings.data_dir, settings.log_dir, settings.pdf_dir):
        folder.mkdir(parents=True, exist_ok=True)
    if settings.redis_url is None:
        embedded_redis.write_config(settings.embedded_redis_dir, port=settings.embedded_redis_port)


def start_supervisord(env: dict[str, str], **popen_kwargs: object) -> subprocess.Popen[bytes]:
    """Start `supervisord -n` with the project's config (the caller owns the process)."""
    command = [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(SUPERVISOR_CONF)]
    return subprocess.Popen(command, env=env, cwd=PROJECT_DIR, **popen_kwargs)  # type: ignore[call-overload]


def supervisorctl(env: dict[str, str], *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run `supervisorctl -c supervisor/supervisord.conf ARGS` against the running supervisord."""
    command = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(SUPERVISOR_CONF), *args]
    return subprocess.run(command, env=env, cwd=PROJECT_DIR, capture_output=True, text=True, check=check)
