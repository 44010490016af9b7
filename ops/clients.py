"""Creating API clients (the CLI and the development client of `make run`)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import NamedTuple

from callbacks.signing import new_webhook_secret
from config import Settings
from store.clients import create_client, list_clients
from store.db import make_engine, make_session_factory

DEV_CLIENT = "development"


def new_client(settings: Settings, name: str, *, admin: bool = False,
               callback_auth_header: tuple[str, str] | None = None) -> dict[str, str]:
    """Create a client in SQL; returns its key and webhook secret (shown once)."""
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as session:
            secret = new_webhook_secret()
            key = create_client(session, name, secret, admin=admin, callback_auth_header=callback_auth_header)
    finally:
        engine.dispose()
    return {"name": name, "api_key": key, "webhook_secret": secret}


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
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as session:
            return bool(list_clients(session))
    finally:
        engine.dispose()


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
