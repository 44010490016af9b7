"""supervisord's configuration and process: shared by `make run`, `make ctl`, the tests and the benchmarks.

`supervisor/supervisord.template.conf` holds the programs with `%(ENV_NAME)s` placeholders; every
start writes it out with the values filled in as `DATA_DIR/supervisord.conf`, so that plain
`supervisorctl -c DATA_DIR/supervisord.conf status` works from any shell without the environment
`make run` had. `make run` also points `supervisor/supervisord.conf` at the file it wrote.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from config import Settings
from jobs.webhook_relay import attempt_timeout
from ops import embedded_redis

PROJECT_DIR = Path(__file__).resolve().parent.parent
TEMPLATE = PROJECT_DIR / "supervisor" / "supervisord.template.conf"
# The configuration of the last `make run`: a symlink to its DATA_DIR/supervisord.conf (git-ignored).
CURRENT_CONF = PROJECT_DIR / "supervisor" / "supervisord.conf"
_PLACEHOLDER = re.compile(r"%\(ENV_(\w+)\)s")
# The supervisor programs of each ROLES entry (the embedded Redis, program redis, runs wherever REDIS_URL is unset).
ROLE_PROGRAMS = {"api": "api", "worker": "pdf_worker", "webhook": "webhook_worker", "scheduler": "scheduler"}


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
    """Create DATA_DIR's folders (0700) and, for the embedded Redis, its config; create the SQLite file 0600
    (SQLite gives its -wal and -shm files the same mode) and tighten what an older version left readable.

    Files the programs create later are 0600 too: supervisord runs them with umask 077 (the template).
    """
    for folder in (settings.data_dir, settings.log_dir, settings.pdf_dir):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder.chmod(0o700)
    if settings.database_url is None:
        sqlite_file = settings.data_dir / "pdfjobs.sqlite3"
        os.close(os.open(sqlite_file, os.O_WRONLY | os.O_CREAT, 0o600))
    if settings.redis_url is None:
        embedded_redis.write_config(settings.embedded_redis_dir, port=settings.embedded_redis_port)
    for folder in (settings.data_dir, settings.embedded_redis_dir, settings.log_dir):
        restrict_files(folder)


def restrict_files(folder: Path) -> None:
    """Make the files directly in `folder` readable by their owner only (sockets and links are left alone)."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.is_file() and not path.is_symlink() and path.stat().st_mode & 0o077:
            path.chmod(0o600)


def config_path(settings: Settings) -> Path:
    """Where a start writes the filled-in supervisord configuration for this DATA_DIR."""
    return settings.data_dir.resolve() / "supervisord.conf"


def write_config(settings: Settings, env: dict[str, str]) -> Path:
    """Fill the template's placeholders from `env` (see `supervisor_env`) and write it to `config_path`."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise KeyError(f"supervisord.template.conf needs {name}, which supervisor_env does not set")
        return env[name].replace("%", "%%")  # supervisor expands %(...)s itself: a literal % is %%

    path = config_path(settings)
    dropped = {program for role, program in ROLE_PROGRAMS.items() if role not in settings.roles}
    if settings.redis_url is not None:
        dropped.add("redis")  # an external Redis: nothing to start
    path.write_text(_PLACEHOLDER.sub(value, without_programs(TEMPLATE.read_text(), dropped)))
    path.chmod(0o600)  # names the Redis and SQL files and the socket; only the service's user reads it
    return path


def without_programs(conf: str, programs: set[str]) -> str:
    """The configuration text without the `[program:NAME]` sections of `programs` (and their comments)."""
    lines = conf.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("[")]
    # a section's block starts at the comment lines right above its header
    blocks = []
    for i in starts:
        while i > 0 and lines[i - 1].startswith(";"):
            i -= 1
        blocks.append(i)
    kept = lines[: blocks[0]] if blocks else lines
    for header, start, end in zip(starts, blocks, [*blocks[1:], len(lines)], strict=True):
        if lines[header].strip() not in {f"[program:{name}]" for name in programs}:
            kept += lines[start:end]
    return "".join(kept)


def point_current_config(path: Path) -> None:
    """Make supervisor/supervisord.conf a link to `path` (the configuration of this `make run`)."""
    link = CURRENT_CONF.with_suffix(".conf.new")
    link.unlink(missing_ok=True)
    link.symlink_to(path)
    link.replace(CURRENT_CONF)


def start_supervisord(conf: Path, env: dict[str, str], **popen_kwargs: object) -> subprocess.Popen[bytes]:
    """Start `supervisord -n -c conf` (the caller owns the process)."""
    command = [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)]
    # umask 077: supervisord's own log and pid file are private too (its umask= applies only when it daemonizes)
    return subprocess.Popen(command, env=env, cwd=PROJECT_DIR, umask=0o077,  # type: ignore[call-overload]
                            **popen_kwargs)


def supervisorctl(conf: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run `supervisorctl -c conf ARGS` against the running supervisord."""
    command = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf), *args]
    return subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, check=check)


def supervisorctl_command(conf: Path) -> str:
    """The supervisorctl command line an operator types for this configuration (the banner prints it)."""
    return f"{Path(sys.executable).parent / 'supervisorctl'} -c {conf}"
