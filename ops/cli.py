"""Operator CLI: `python -m ops.cli COMMAND` (same environment as `make run`: DATA_DIR, DATABASE_URL...).

    create-client NAME [--admin] [--callback-header NAME:VALUE]   prints the API key and secret once
    list-clients                                                  clients from API_CLIENTS and the CLI
    requeue-failed [--client NAME] [--limit N]                    retry the dead letters
    stats                                                         GET /api/queue/stats, as JSON
    dashboard-password                                            the rq-dashboard login (generated on the first run)
"""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy.exc import IntegrityError

from callbacks.payloads import iso
from config import Settings, SettingsError
from jobs.runtime import Runtime, build_runtime
from ops.clients import dashboard_password, new_client
from store.clients import list_clients
from store.db import migrate


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _runtime(settings: Settings) -> Runtime:
    migrate(settings.sqlalchemy_url)
    return build_runtime(settings, socket_timeout=5)


def _header(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    name, sep, secret = value.partition(":")
    if not sep or not name.strip() or not secret.strip():
        raise click.BadParameter("use NAME:VALUE, e.g. X-N8N-Token:s3cret", param_hint="--callback-header")
    return name.strip(), secret.strip()


@click.group()
def cli() -> None:
    """Operate the PDF job service."""


@cli.command("create-client")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May see and steer every client's jobs.")
@click.option("--callback-header", metavar="NAME:VALUE",
              help="Static header sent with every webhook (for n8n Header Auth).")
def create_client(name: str, admin: bool, callback_header: str | None) -> None:
    """Create an API client and print its key and webhook secret (shown only this once)."""
    settings = _settings()
    header = _header(callback_header)
    if any(client.name == name for client in settings.api_clients):
        raise click.ClickException(f"a client named {name!r} is configured in API_CLIENTS already")
    migrate(settings.sqlalchemy_url)
    try:
        credentials = new_client(settings, name, admin=admin, callback_auth_header=header)
    except IntegrityError:
        raise click.ClickException(f"a client named {name!r} exists already; choose another name") from None
    click.echo(f"client:          {credentials['name']}{' (admin)' if admin else ''}")
    click.echo(f"api key:         {credentials['api_key']}")
    click.echo(f"webhook secret:  {credentials['webhook_secret']}")
    click.echo("Store both now: the key cannot be shown again (only its hash is kept).", err=True)


@cli.command("list-clients")
def list_clients_command() -> None:
    """List clients (never their keys or secrets)."""
    settings = _settings()
    migrate(settings.sqlalchemy_url)
    rows = [(c.name, "API_CLIENTS", c.admin, False, c.callback_auth_header[0] if c.callback_auth_header else "")
            for c in settings.api_clients]
    rt = build_runtime(settings)
    try:
        with rt.session() as session:
            rows += [(c.name, f"cli {iso(c.created_at)}", c.admin, c.disabled, c.callback_auth_header_name or "")
                     for c in list_clients(session)]
    finally:
        rt.engine.dispose()
    click.echo(f"{'NAME':<24} {'SOURCE':<32} {'ADMIN':<6} {'DISABLED':<9} CALLBACK HEADER")
    for name, source, admin, disabled, header in rows:
        click.echo(f"{name:<24} {source:<32} {'yes' if admin else 'no':<6} {'yes' if disabled else 'no':<9} {header}")


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
