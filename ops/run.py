"""`make run`: migrate, create the development client, start everything under supervisord.

Runs in the foreground; Ctrl-C (or SIGTERM) stops supervisord, which stops every program
(workers finish their running job first) and the embedded Redis last.
"""

from __future__ import annotations

import signal
import sys
import time
import urllib.request
from pathlib import Path

from sqlalchemy import make_url

from config import Settings, SettingsError
from config.deployment import public_base_url_problem
from ops.clients import DashboardPassword, dashboard_password, development_client
from ops.supervise import (
    point_current_config,
    prepare_data_dir,
    start_supervisord,
    supervisor_env,
    supervisorctl,
    supervisorctl_command,
    write_config,
)
from store.db import migrate


def main() -> int:
    """Start the service and wait for supervisord to end."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    prepare_data_dir(settings)
    started = time.monotonic()
    migrate(settings.sqlalchemy_url)
    serves_api = "api" in settings.roles
    client = development_client(settings) if serves_api else None
    password = dashboard_password(settings)
    env = supervisor_env(settings)
    env["RQ_DASHBOARD_PASSWORD"] = password.value
    env["DATA_DIR"] = str(settings.data_dir.resolve())
    conf = write_config(settings, env)
    point_current_config(conf)
    supervisord = start_supervisord(conf, env)
    # Ctrl-C reaches supervisord too (same process group); on SIGTERM we pass it on.
    signal.signal(signal.SIGTERM, lambda *_: supervisord.terminate())
    signal.signal(signal.SIGINT, lambda *_: None)
    base = f"http://{settings.host if settings.host != '0.0.0.0' else '127.0.0.1'}:{settings.port}"
    ready = wait_ready(base, supervisord) if serves_api else wait_running(conf, supervisord)
    if ready:
        print_banner(settings, base, client, password, conf, time.monotonic() - started)
        if settings.redis_url:
            warn_external_redis(settings)
    warn_public_base_url(settings)
    return supervisord.wait()


def wait_ready(base: str, supervisord, timeout: float = 90) -> bool:  # noqa: ANN001
    """Poll /readyz until it answers 200; False if supervisord exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and supervisord.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def wait_running(conf: Path, supervisord, timeout: float = 60) -> bool:  # noqa: ANN001
    """A host without the API: poll supervisorctl until every program is RUNNING."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and supervisord.poll() is None:
        lines = supervisorctl(conf, "status").stdout.splitlines()
        if lines and all(" RUNNING " in f" {line} " for line in lines):
            return True
        time.sleep(0.5)
    return False


def warn_external_redis(settings: Settings) -> None:
    """Say loudly when the external Redis could lose queued jobs (no persistence, eviction)."""
    from jobs.redis_check import durability_problems
    from jobs.runtime import connect_redis

    for problem in durability_problems(connect_redis(settings, socket_timeout=2)):
        print(f"WARNING: {problem}", file=sys.stderr, flush=True)


def warn_public_base_url(settings: Settings) -> None:
    """Say loudly when several hosts would hand out 127.0.0.1 links (PUBLIC_BASE_URL unset or loopback)."""
    problem = public_base_url_problem(settings)
    if problem:
        line = "!" * 100
        print(f"{line}\nWARNING: {problem}\n{line}", file=sys.stderr, flush=True)


def print_banner(settings: Settings, base: str, client: dict[str, str] | None, password: DashboardPassword,
                 conf: Path, seconds: float) -> None:
    """Say where everything is."""
    lines = [
        "",
        f"PDF job service ready in {seconds:.1f} s ({settings.app_env}; this host runs "
        f"{', '.join(settings.roles)}; {settings.workers} PDF workers, {worker_priority(settings)})",
        f"  supervisor    {supervisorctl_command(conf)} status   (or: make ctl cmd=status)",
        f"  SQL           {sql_connections_line(settings)}",
    ]
    if "api" in settings.roles:
        lines += [
            f"  API           {base}/api   (docs: {base}/api/docs)",
            f"  rq-dashboard  {base}/rq    {dashboard_login(settings.dashboard_username, password)}",
        ]
    if client:
        lines += [
            f"  API key       {client['api_key']}   (client '{client['name']}')",
            f"  webhook secret {client['webhook_secret']}",
            f"  try:  curl -s -X POST -H 'Authorization: Bearer {client['api_key']}' "
            f"-H 'Content-Type: application/json' -d @examples/minatBakatUmum.json {base}/api/reports/generate-async",
        ]
    lines += ["  Ctrl-C stops everything.", ""]
    print("\n".join(lines), flush=True)


def worker_priority(settings: Settings) -> str:
    """How the PDF workers yield the CPU to the API (WORKER_SCHED_IDLE, WORKER_NICE), in the banner's words."""
    policy = "under SCHED_IDLE, " if settings.worker_sched_idle else ""
    return f"{policy}nice {settings.worker_nice}"


def dashboard_login(username: str, password: DashboardPassword) -> str:
    """The banner's login: a generated password once, when it is made; later only where to find it."""
    if password.source == "generated":
        return (f"login {username} / {password.value}   (generated now, shown this once; "
                "later: python -m ops.cli dashboard-password)")
    if password.source == "RQ_DASHBOARD_PASSWORD":
        return f"login {username}, password from RQ_DASHBOARD_PASSWORD"
    return f"login {username}   (password: python -m ops.cli dashboard-password)"


def sql_connections_line(settings: Settings) -> str:
    """The database and the SQL connections this host's processes can open at most (each its own pool)."""
    per_role = {"api": settings.api_processes, "worker": settings.workers, "webhook": settings.webhook_workers,
                "scheduler": 1}
    processes = sum(count for role, count in per_role.items() if role in settings.roles)
    per_process = settings.db_pool_size + settings.db_max_overflow
    database = make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)
    if database.startswith("sqlite"):
        return f"{database} (SQLite: one host only; DB_POOL_SIZE applies to PostgreSQL)"
    return (f"{database}: up to {processes * per_process} connections from this host ({processes} processes x "
            f"(DB_POOL_SIZE {settings.db_pool_size} + DB_MAX_OVERFLOW {settings.db_max_overflow}))")


if __name__ == "__main__":
    raise SystemExit(main())
