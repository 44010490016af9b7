"""Operator CLI: `python -m ops.cli COMMAND` (same environment as `make run`: DATA_DIR, DATABASE_URL...).

    create-client NAME [--admin] [--callback-header NAME:VALUE] [--rate-limit R] [--max-queued N]
                                                   prints the API key and webhook secret once
    list-clients                                   clients from API_CLIENTS and the CLI, with their state
    disable-client NAME / enable-client NAME       its keys stop (or start again) working at once
    rotate-key NAME [--grace 24h]                  a new key; the old one works for the grace period
    rotate-webhook-secret NAME [--overlap 24h]     a new secret; both sign webhooks during the overlap
    revoke-client NAME --yes                       for good: no key of it works again
    set-limits NAME [--rate-limit R|default] [--max-queued N|default]
    encryption-key                                 a new key for SECRETS_ENCRYPTION_KEY
    reseal-secrets                                 store every secret sealed with SECRETS_ENCRYPTION_KEY's first key
    requeue-failed [--client NAME] [--limit N]     retry the dead letters
    stats                                          GET /api/queue/stats, as JSON
    dashboard-password                             the rq-dashboard login (generated on the first run)

Client changes are recorded in the audit trail (GET /api/audit) and hold in every API process at its
next request (docs/security.md).
"""

from __future__ import annotations

import json
from typing import Any

import click

from callbacks.payloads import iso
from config import Settings
from jobs.runtime import Runtime, build_runtime
from ops.client_cli import COMMANDS, settings_from_env
from ops.clients import dashboard_password
from store.db import migrate


def _settings() -> Settings:
    return settings_from_env()


def _runtime(settings: Settings) -> Runtime:
    migrate(settings.sqlalchemy_url)
    return build_runtime(settings, socket_timeout=5)


@click.group()
def cli() -> None:
    """Operate the PDF job service."""


for _command in COMMANDS:
    cli.add_command(_command)


@cli.command("requeue-failed")
@click.option("--client", "client_name", default=None, help="Only this client's failed jobs.")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000))
def requeue_failed_command(client_name: str | None, limit: int) -> None:
    """Retry every failed job (same ids, retry counts kept)."""
    from jobs.control import requeue_failed

    rt = _runtime(_settings())
    try:
        report = requeue_failed(rt, client_name=client_name, limit=limit)
    finally:
        rt.engine.dispose()
    click.echo(f"requeued {len(report.requeued)} job(s)")
    for job_id in report.requeued:
        click.echo(f"  {job_id}")
    for job_id, reason in report.skipped.items():
        click.echo(f"skipped {job_id}: {reason}")


@cli.command("stats")
def stats_command() -> None:
    """Queue lengths, workers, the last hour's outcomes and the active alerts, as JSON."""
    from jobs.stats import queue_stats

    rt = _runtime(_settings())
    try:
        stats: dict[str, Any] = queue_stats(rt)
    finally:
        rt.engine.dispose()
    stats["generated_at"] = iso(stats["generated_at"])
    click.echo(json.dumps(stats, indent=2))


@cli.command("dashboard-password")
def dashboard_password_command() -> None:
    """Show the rq-dashboard login: the password `make run` generated (shown once there), or RQ_DASHBOARD_PASSWORD."""
    settings = _settings()
    password = dashboard_password(settings)
    click.echo(f"user:      {settings.dashboard_username}")
    click.echo(f"password:  {password.value}")
    if password.source == "generated":
        click.echo(f"Generated now and kept in {settings.data_dir / 'dashboard-password'}; make run uses it.", err=True)


if __name__ == "__main__":
    cli(prog_name="python -m ops.cli")
