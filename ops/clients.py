"""API clients' lifecycle for the CLI and `make run`: create, disable, enable, rotate, revoke, limits.

Every change is one SQL transaction, recorded in the audit trail (client `cli`, source `cli:<user>@<host>`),
then announced by bumping the clients version in Redis: each API process checks that counter on every
request and drops its cached keys when it moves, so the change holds at the next request.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from callbacks.signing import new_webhook_secret
from config import Settings
from jobs.runtime import connect_redis
from store import audit as audit_store
from store import clients as client_store
from store.clients import CLIENTS_VERSION_KEY, list_clients
from store.db import make_engine, make_session_factory

DEV_CLIENT = "development"
CLI_ACTOR = "cli"
T = TypeVar("T")
_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfiguredClientError(Exception):
    """The client is configured in API_CLIENTS: the CLI cannot change it (the environment does)."""


def parse_duration(text: str) -> timedelta:
    """`90`, `90s`, `30m`, `24h` or `7d` as a timedelta; ValueError otherwise."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"use a number with s, m, h or d, such as 24h or 7d, got {text!r}")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def cli_source() -> str:
    """Where a CLI change comes from, for the audit trail."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = str(os.getuid())
    return f"cli:{user}@{socket.gethostname()}"


@contextmanager
def client_session(settings: Settings) -> Iterator[Session]:
    """A session on the service's SQL database, its engine disposed of afterwards."""
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def bump_clients_version(settings: Settings) -> bool:
    """Tell every API process that clients changed; False when Redis did not answer."""
    redis = connect_redis(settings, socket_timeout=2)
    try:
        redis.incr(CLIENTS_VERSION_KEY)
    except RedisError:
        return False
    finally:
        redis.close()
    return True


def change_client(settings: Settings, name: str, action: str, change: Callable[[Session], T],
                  detail: dict[str, Any] | None = None) -> tuple[T, bool]:
    """Apply `change` to the CLI-created client `name`, record it, bump the version.

    Returns the change's result and whether the API processes were told (Redis answered). Raises
    ConfiguredClientError for an API_CLIENTS client, LookupError for an unknown one.
    """
    if any(client.name == name for client in settings.api_clients):
        raise ConfiguredClientError(f"client {name!r} is configured in API_CLIENTS: change that variable and "
                                    "restart the service instead")
    with client_session(settings) as session:
        result = change(session)
        audit_store.record(session, audit_store.Entry(
            client_name=CLI_ACTOR, action=action, source=cli_source(), detail={"client": name, **(detail or {})}))
    return result, bump_clients_version(settings)


def new_client(settings: Settings, name: str, *, admin: bool = False,
               callback_auth_header: tuple[str, str] | None = None, rate_limit: str | None = None,
               max_queued: int | None = None) -> dict[str, str]:
    """Create a client in SQL; returns its key and webhook secret (shown once)."""
    secret = new_webhook_secret()

    def create(session: Session) -> str:
        return client_store.create_client(
            session, name, secret, admin=admin, callback_auth_header=callback_auth_header, rate_limit=rate_limit,
            max_queued=max_queued, keys=settings.secrets_encryption_key)

    key, _ = change_client(settings, name, "client.create", create, {"admin": admin})
    return {"name": name, "api_key": key, "webhook_secret": secret}


def set_disabled(settings: Settings, name: str, disabled: bool) -> bool:
    """Disable or enable a client; whether the API processes were told at once."""
    action = "client.disable" if disabled else "client.enable"
    return change_client(settings, name, action, lambda s: client_store.set_disabled(s, name, disabled))[1]


def revoke(settings: Settings, name: str) -> bool:
    """Revoke a client for good; whether the API processes were told at once."""
    return change_client(settings, name, "client.revoke", lambda s: client_store.revoke_client(s, name))[1]


def rotate_key(settings: Settings, name: str, grace: timedelta) -> tuple[str, bool]:
    """A new API key for the client; the old one works for `grace` more."""
    return change_client(settings, name, "client.rotate_key", lambda s: client_store.rotate_key(s, name, grace),
                         {"grace_seconds": int(grace.total_seconds())})


def rotate_webhook_secret(settings: Settings, name: str, overlap: timedelta) -> tuple[str, bool]:
    """A new webhook secret for the client; both sign its webhooks for `overlap`."""
    secret = new_webhook_secret()

    def rotate(session: Session) -> None:
        client_store.rotate_webhook_secret(session, name, secret, overlap, settings.secrets_encryption_key)

    _, told = change_client(settings, name, "client.rotate_webhook_secret", rotate,
                            {"overlap_seconds": int(overlap.total_seconds())})
    return secret, told


def set_limits(settings: Settings, name: str, rate_limit: str | None, max_queued: int | None) -> bool:
    """Set the client's own rate limit and cap (None: the defaults); whether the API processes were told."""
    def apply(session: Session) -> None:
        client_store.set_limits(session, name, rate_limit=rate_limit, max_queued=max_queued)

    return change_client(settings, name, "client.set_limits", apply,
                         {"rate_limit": rate_limit, "max_queued": max_queued})[1]


def development_client(settings: Settings) -> dict[str, str] | None:
    """The development client's credentials, created on the first `make run` and kept in DATA_DIR.

    Returns None when clients are configured (API_CLIENTS or CLI-created ones): then there is
    nothing to create.
    """
    path = settings.data_dir / "development-client.json"
    if path.exists():
        return json.loads(path.read_text())
    if settings.api_clients or _has_sql_clients(settings):
        return None
    credentials = new_client(settings, DEV_CLIENT, admin=True)
    _write_private(path, json.dumps(credentials, indent=2))
    return credentials


def _has_sql_clients(settings: Settings) -> bool:
    with client_session(settings) as session:
        return bool(list_clients(session))


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


class DashboardPassword(NamedTuple):
    """The rq-dashboard password and where it comes from."""

    value: str
    source: str  # "RQ_DASHBOARD_PASSWORD", "generated" (just now, the one time it is shown) or "stored"


def dashboard_password(settings: Settings) -> DashboardPassword:
    """RQ_DASHBOARD_PASSWORD, or one generated on the first run and kept in DATA_DIR (mode 0600)."""
    if settings.dashboard_password:
        return DashboardPassword(settings.dashboard_password, "RQ_DASHBOARD_PASSWORD")
    path = settings.data_dir / "dashboard-password"
    if path.exists():
        return DashboardPassword(path.read_text().strip(), "stored")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    password = secrets.token_urlsafe(16)
    _write_private(path, password)
    return DashboardPassword(password, "generated")
