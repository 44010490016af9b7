"""The operator CLI's client commands (ops/cli.py adds them to `python -m ops.cli`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

import click
from cryptography.fernet import Fernet
from sqlalchemy.exc import IntegrityError

from callbacks.payloads import iso
from config import Settings, SettingsError
from config.settings import check_rate
from ops import clients as lifecycle
from store.clients import KEY_CACHE_SECONDS, ClientStateError, list_clients, reseal_secrets
from store.db import migrate
from store.models import ApiClient, utcnow
from store.sealed import SealedSecretError


def settings_from_env() -> Settings:
    """The service's settings, or a CLI error listing what is wrong with them."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _migrated() -> Settings:
    settings = settings_from_env()
    migrate(settings.sqlalchemy_url)
    return settings


def _header(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    name, sep, secret = value.partition(":")
    if not sep or not name.strip() or not secret.strip():
        raise click.BadParameter("use NAME:VALUE, e.g. X-N8N-Token:s3cret", param_hint="--callback-header")
    return name.strip(), secret.strip()


def _rate(value: str | None) -> str | None:
    if value is None or value == "default":
        return None
    try:
        return check_rate(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--rate-limit") from None


def _max_queued(value: str | None) -> int | None:
    if value is None or value == "default":
        return None
    if not value.isdigit() or int(value) < 1:
        raise click.BadParameter(f"must be a positive integer or 'default', got {value!r}", param_hint="--max-queued")
    return int(value)


def _duration(_ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    try:
        return lifecycle.parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=f"--{param.name}") from None


def _client_change(command: Callable[..., bool | None]) -> Callable[..., None]:
    """Turn lifecycle errors into CLI errors and say whether the API processes were told at once."""
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            told = command(*args, **kwargs)
        except (LookupError, ClientStateError, lifecycle.ConfiguredClientError, SealedSecretError) as exc:
            raise click.ClickException(str(exc)) from None
        if told is False:
            click.echo("note: Redis did not answer, so API processes were not told: those that reach Redis keep "
                       f"their cached keys for up to {int(KEY_CACHE_SECONDS)} s.", err=True)

    return wrapper


@click.command("create-client")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May see and steer every client's jobs, and read the audit trail.")
@click.option("--callback-header", metavar="NAME:VALUE",
              help="Static header sent with every webhook (for n8n Header Auth).")
@click.option("--rate-limit", metavar="RATE", help="Its own request limit, e.g. 1200/minute (default: RATE_LIMIT).")
@click.option("--max-queued", metavar="N", help="Its own cap of queued + scheduled jobs (default: "
              "MAX_QUEUED_PER_CLIENT).")
def create_client(name: str, admin: bool, callback_header: str | None, rate_limit: str | None,
                  max_queued: str | None) -> None:
    """Create an API client and print its key and webhook secret (shown only this once)."""
    header, rate, cap = _header(callback_header), _rate(rate_limit), _max_queued(max_queued)
    settings = _migrated()
    try:
        credentials = lifecycle.new_client(settings, name, admin=admin, callback_auth_header=header,
                                           rate_limit=rate, max_queued=cap)
    except lifecycle.ConfiguredClientError:
        raise click.ClickException(f"a client named {name!r} is configured in API_CLIENTS already") from None
    except IntegrityError:
        raise click.ClickException(f"a client named {name!r} exists already; choose another name") from None
    click.echo(f"client:          {credentials['name']}{' (admin)' if admin else ''}")
    click.echo(f"api key:         {credentials['api_key']}")
    click.echo(f"webhook secret:  {credentials['webhook_secret']}")
    click.echo("Store both now: the key cannot be shown again (only its hash is kept).", err=True)


def _state(row: ApiClient) -> str:
    return "revoked" if row.revoked_at else "disabled" if row.disabled else "active"


def _notes(row: ApiClient) -> str:
    now, notes = utcnow(), []
    if row.previous_key_expires_at and row.previous_key_expires_at > now and not row.revoked_at:
        notes.append(f"old key valid until {iso(row.previous_key_expires_at)}")
    if row.previous_secret_expires_at and row.previous_secret_expires_at > now:
        notes.append(f"old secret signs until {iso(row.previous_secret_expires_at)}")
    return "; ".join(notes)


@click.command("list-clients")
def list_clients_command() -> None:
    """List clients with their state and limits (never their keys or secrets)."""
    settings = _migrated()
    rows = [(c.name, "API_CLIENTS", "active", c.admin, c.rate_limit, c.max_queued,
             c.callback_auth_header[0] if c.callback_auth_header else "", "") for c in settings.api_clients]
    with lifecycle.client_session(settings) as session:
        rows += [(c.name, f"cli {iso(c.created_at)}", _state(c), c.admin, c.rate_limit, c.max_queued,
                  c.callback_auth_header_name or "", _notes(c)) for c in list_clients(session)]
    click.echo(f"{'NAME':<24} {'SOURCE':<32} {'STATE':<9} {'ADMIN':<6} {'RATE LIMIT':<14} {'MAX QUEUED':<11} "
               "CALLBACK HEADER  NOTES")
    for name, source, state, admin, rate, cap, header, notes in rows:
        click.echo(f"{name:<24} {source:<32} {state:<9} {'yes' if admin else 'no':<6} {rate or 'default':<14} "
                   f"{cap or 'default'!s:<11} {header:<16} {notes}")


def _switch_command(command_name: str, disabled: bool, help_text: str) -> click.Command:
    """disable-client and enable-client: the same change in two directions."""
    @click.command(command_name, help=help_text)
    @click.argument("name")
    @_client_change
    def switch(name: str) -> bool:
        told = lifecycle.set_disabled(_migrated(), name, disabled)
        click.echo(f"client {name} {'disabled' if disabled else 'enabled'}")
        return told

    return switch


disable_client = _switch_command("disable-client", True,
                                 "Disable a client: its keys stop working at once (enable-client undoes it).")
enable_client = _switch_command("enable-client", False, "Enable a disabled client again.")


@click.command("rotate-key")
@click.argument("name")
@click.option("--grace", default="24h", show_default=True, callback=_duration,
              help="How long the old key keeps working (0: not at all), e.g. 30m, 24h, 7d.")
@_client_change
def rotate_key(name: str, grace: timedelta) -> bool:
    """Give a client a new API key; the old one keeps working for the grace period."""
    key, told = lifecycle.rotate_key(_migrated(), name, grace)
    click.echo(f"api key:         {key}")
    until = f"until {iso(utcnow() + grace)}" if grace else "no longer (no grace period)"
    click.echo(f"The old key works {until}. Store the new key now: it cannot be shown again.", err=True)
    return told


@click.command("rotate-webhook-secret")
@click.argument("name")
@click.option("--overlap", default="24h", show_default=True, callback=_duration,
              help="How long the old secret signs beside the new one (0: not at all), e.g. 1h, 24h.")
@_client_change
def rotate_webhook_secret(name: str, overlap: timedelta) -> bool:
    """Give a client a new webhook secret; both sign its webhooks during the overlap."""
    secret, told = lifecycle.rotate_webhook_secret(_migrated(), name, overlap)
    click.echo(f"webhook secret:  {secret}")
    until = f"until {iso(utcnow() + overlap)}" if overlap else "no longer (no overlap)"
    click.echo(f"Webhooks carry 'v1,<new> v1,<old>' signatures {until}: switch the receiver to the new secret "
               "before then.", err=True)
    return told


@click.command("revoke-client")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Confirm: a revoked client can never be enabled again.")
@_client_change
def revoke_client(name: str, yes: bool) -> bool:
    """Revoke a client for good: no key of it works again and its webhooks are no longer sent."""
    if not yes:
        raise click.ClickException("revoking cannot be undone; add --yes (or use disable-client)")
    told = lifecycle.revoke(_migrated(), name)
    click.echo(f"client {name} revoked")
    return told


@click.command("set-limits")
@click.argument("name")
@click.option("--rate-limit", metavar="RATE|default", help="Requests it may make, e.g. 1200/minute.")
@click.option("--max-queued", metavar="N|default", help="Queued + scheduled jobs it may have.")
@_client_change
def set_limits(name: str, rate_limit: str | None, max_queued: str | None) -> bool:
    """Set a client's own rate limit and cap of queued jobs ('default': RATE_LIMIT, MAX_QUEUED_PER_CLIENT)."""
    rate, cap = _rate(rate_limit), _max_queued(max_queued)
    told = lifecycle.set_limits(_migrated(), name, rate, cap)
    click.echo(f"client {name}: rate limit {rate or 'default'}, max queued {cap or 'default'}")
    return told


@click.command("encryption-key")
def encryption_key() -> None:
    """Print a new Fernet key for SECRETS_ENCRYPTION_KEY (put it first, keep older keys after it)."""
    click.echo(Fernet.generate_key().decode())


@click.command("reseal-secrets")
@_client_change
def reseal_secrets_command() -> None:
    """Store every client's secrets sealed with the first key of SECRETS_ENCRYPTION_KEY."""
    settings = _migrated()
    if not settings.secrets_encryption_key:
        raise click.ClickException("SECRETS_ENCRYPTION_KEY is not set: nothing to seal with")
    with lifecycle.client_session(settings) as session:
        count = reseal_secrets(session, settings.secrets_encryption_key)
    click.echo(f"sealed the secrets of {count} client(s) with the first key")


COMMANDS = (create_client, list_clients_command, disable_client, enable_client, rotate_key, rotate_webhook_secret,
            revoke_client, set_limits, encryption_key, reseal_secrets_command)
