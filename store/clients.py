"""API clients: from API_CLIENTS (settings) and from the api_clients table (CLI-created), and their lifecycle.

A CLI-created client's key is kept only as its SHA-256; a rotated key keeps working until the end of its
grace period, a rotated webhook secret keeps signing beside the new one until the end of its overlap.
Secrets are sealed at rest when SECRETS_ENCRYPTION_KEY is set (store/sealed.py).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from config import ClientConfig
from store.models import ApiClient, utcnow
from store.sealed import SealedSecretError, seal, unseal

log = logging.getLogger(__name__)

# A Redis counter every client change bumps: API processes drop their cached key lookups when it moves.
CLIENTS_VERSION_KEY = "pdfjobs:clients:version"
# Seconds an API process trusts a cached key even when the version never moves (a CLI that could not reach
# Redis to bump it).
KEY_CACHE_SECONDS = 60.0


class ClientStateError(Exception):
    """The change is not possible in the client's state (a revoked client stays revoked)."""


@dataclass(frozen=True)
class KeyMatch:
    """The client an API key belongs to, and when that key stops working (None: until changed)."""

    client: ClientConfig
    expires_at: datetime | None = None


def hash_key(api_key: str) -> str:
    """SHA-256 of an API key: keys are random 32-byte tokens, so a fast hash is enough."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    """A fresh API key (shown once; only its hash is stored)."""
    return "pk_" + secrets.token_urlsafe(32)


def _to_config(row: ApiClient, keys: Sequence[str], now: datetime) -> ClientConfig:
    header = None
    if row.callback_auth_header_name and row.callback_auth_header_value:
        header = (row.callback_auth_header_name, unseal(row.callback_auth_header_value, keys))
    previous = None
    if row.previous_webhook_secret and row.previous_secret_expires_at and row.previous_secret_expires_at > now:
        previous = unseal(row.previous_webhook_secret, keys)
    return ClientConfig(
        name=row.name, api_key="", webhook_secret=unseal(row.webhook_secret, keys), callback_auth_header=header,
        admin=row.admin, rate_limit=row.rate_limit, max_queued=row.max_queued, previous_webhook_secret=previous,
    )


def find_client_by_key(
    session: Session, configured: Sequence[ClientConfig], api_key: str, *, keys: Sequence[str] = ()
) -> KeyMatch | None:
    """The client that owns `api_key` (its current key, or a rotated one in its grace period), or None."""
    for client in configured:
        if secrets.compare_digest(client.api_key.encode(), api_key.encode()):
            return KeyMatch(client)
    digest = hash_key(api_key)
    row = session.scalar(select(ApiClient).where(or_(ApiClient.key_hash == digest,
                                                     ApiClient.previous_key_hash == digest)))
    if row is None or row.disabled or row.revoked_at is not None:
        return None
    now = utcnow()
    expires_at = None
    if row.key_hash != digest:  # the rotated-out key
        expires_at = row.previous_key_expires_at
        if expires_at is None or expires_at <= now:
            return None
    return KeyMatch(_to_config(row, keys, now), expires_at)


def find_clients_by_name(
    sessions: Callable[[], Session], configured: Sequence[ClientConfig], names: Iterable[str],
    *, keys: Sequence[str] = (),
) -> dict[str, ClientConfig]:
    """The clients called `names` that exist and are not revoked, by name (the webhook sender looks up
    signing secrets this way): those of API_CLIENTS, the others from SQL, in a session opened only when
    there are any. A disabled client's webhooks are still signed (its accepted jobs still end)."""
    wanted = set(names)
    found = {client.name: client for client in configured if client.name in wanted}
    missing = wanted - found.keys()
    if missing:
        now = utcnow()
        with sessions() as session:
            for name in missing:
                row = session.get(ApiClient, name)
                if row is None or row.revoked_at is not None:
                    continue
                try:
                    found[name] = _to_config(row, keys, now)
                except SealedSecretError as exc:  # its webhooks cannot be signed: the sender gives them up
                    log.error("event=client_secret_unreadable client=%s reason=%r", name, str(exc))
    return found


def create_client(
    session: Session,
    name: str,
    webhook_secret: str,
    *,
    admin: bool = False,
    callback_auth_header: tuple[str, str] | None = None,
    rate_limit: str | None = None,
    max_queued: int | None = None,
    keys: Sequence[str] = (),
) -> str:
    """Create a client and return its new API key: shown once, only its hash is kept."""
    api_key = new_api_key()
    session.add(
        ApiClient(
            name=name,
            key_hash=hash_key(api_key),
            webhook_secret=seal(webhook_secret, keys),
            callback_auth_header_name=callback_auth_header[0] if callback_auth_header else None,
            callback_auth_header_value=seal(callback_auth_header[1], keys) if callback_auth_header else None,
            admin=admin,
            disabled=False,
            rate_limit=rate_limit,
            max_queued=max_queued,
        )
    )
    session.commit()
    return api_key


def list_clients(session: Session) -> Sequence[ApiClient]:
    """Every CLI-created client, by name."""
    return session.scalars(select(ApiClient).order_by(ApiClient.name)).all()


def client_row(session: Session, name: str) -> ApiClient:
    """The CLI-created client `name`; LookupError when there is none."""
    row = session.get(ApiClient, name)
    if row is None:
        raise LookupError(f"no CLI-created client named {name!r}")
    return row


def _live_row(session: Session, name: str) -> ApiClient:
    row = client_row(session, name)
    if row.revoked_at is not None:
        raise ClientStateError(f"client {name!r} was revoked; create a new client instead")
    return row


def set_disabled(session: Session, name: str, disabled: bool) -> None:
    """Disable a client (its keys stop working) or enable it again."""
    _live_row(session, name).disabled = disabled
    session.commit()


def revoke_client(session: Session, name: str) -> None:
    """Revoke a client for good: no key of it works again, webhooks of its jobs are no longer signed."""
    row = client_row(session, name)
    row.disabled = True
    row.revoked_at = row.revoked_at or utcnow()
    row.previous_key_hash = row.previous_key_expires_at = None
    session.commit()


def rotate_key(session: Session, name: str, grace: timedelta) -> str:
    """Give the client a new API key; the current one keeps working for `grace` (none when zero)."""
    row = _live_row(session, name)
    api_key = new_api_key()
    row.previous_key_hash = row.key_hash if grace > timedelta(0) else None
    row.previous_key_expires_at = utcnow() + grace if grace > timedelta(0) else None
    row.key_hash = hash_key(api_key)
    session.commit()
    return api_key


def rotate_webhook_secret(session: Session, name: str, new_secret: str, overlap: timedelta,
                          keys: Sequence[str] = ()) -> None:
    """Sign with `new_secret` from now on, and with the current secret beside it for `overlap`."""
    row = _live_row(session, name)
    row.previous_webhook_secret = row.webhook_secret if overlap > timedelta(0) else None
    row.previous_secret_expires_at = utcnow() + overlap if overlap > timedelta(0) else None
    row.webhook_secret = seal(new_secret, keys)
    session.commit()


def set_limits(session: Session, name: str, *, rate_limit: str | None, max_queued: int | None) -> None:
    """Set the client's own rate limit and queued-jobs cap (None: the settings' defaults)."""
    row = client_row(session, name)
    row.rate_limit, row.max_queued = rate_limit, max_queued
    session.commit()


def reseal_secrets(session: Session, keys: Sequence[str]) -> int:
    """Store every client's secrets sealed with the first key (plain text when `keys` is empty); how many rows."""
    rows = list_clients(session)
    for row in rows:
        row.webhook_secret = seal(unseal(row.webhook_secret, keys), keys)
        if row.callback_auth_header_value:
            row.callback_auth_header_value = seal(unseal(row.callback_auth_header_value, keys), keys)
        if row.previous_webhook_secret:
            row.previous_webhook_secret = seal(unseal(row.previous_webhook_secret, keys), keys)
    session.commit()
    return len(rows)
