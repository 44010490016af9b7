"""API clients: from API_CLIENTS (settings) and from the api_clients table (CLI-created)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from config import ClientConfig
from store.models import ApiClient


def hash_key(api_key: str) -> str:
    """SHA-256 of an API key: keys are random 32-byte tokens, so a fast hash is enough."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def _to_config(row: ApiClient) -> ClientConfig:
    header = None
    if row.callback_auth_header_name and row.callback_auth_header_value:
        header = (row.callback_auth_header_name, row.callback_auth_header_value)
    return ClientConfig(
        name=row.name, api_key="", webhook_secret=row.webhook_secret, callback_auth_header=header, admin=row.admin
    )


def find_client_by_key(session: Session, configured: Sequence[ClientConfig], api_key: str) -> ClientConfig | None:
    """The client that owns `api_key`, or None."""
    for client in configured:
        if secrets.compare_digest(client.api_key.encode(), api_key.encode()):
            return client
    row = session.scalar(select(ApiClient).where(ApiClient.key_hash == hash_key(api_key)))
    if row is None or row.disabled:
        return None
    return _to_config(row)


def find_clients_by_name(
    sessions: Callable[[], Session], configured: Sequence[ClientConfig], names: Iterable[str]
) -> dict[str, ClientConfig]:
    """The clients called `names` that exist, by name (the webhook sender looks up signing secrets this
    way): those of API_CLIENTS, the others from SQL, in a session opened only when there are any."""
    wanted = set(names)
    found = {client.name: client for client in configured if client.name in wanted}
    missing = wanted - found.keys()
    if missing:
        with sessions() as session:
            for name in missing:
                row = session.get(ApiClient, name)
                if row is not None:
                    found[name] = _to_config(row)
    return found


def create_client(
    session: Session,
    name: str,
    webhook_secret: str,
    *,
    admin: bool = False,
    callback_auth_header: tuple[str, str] | None = None,
) -> str:
    """Create a client and return its new API key: shown once, only its hash is kept."""
    api_key = "pk_" + secrets.token_urlsafe(32)
    session.add(
        ApiClient(
            name=name,
            key_hash=hash_key(api_key),
            webhook_secret=webhook_secret,
            callback_auth_header_name=callback_auth_header[0] if callback_auth_header else None,
            callback_auth_header_value=callback_auth_header[1] if callback_auth_header else None,
            admin=admin,
            disabled=False,
        )
    )
    session.commit()
    return api_key


def list_clients(session: Session) -> Sequence[ApiClient]:
    """Every CLI-created client, by name."""
    return session.scalars(select(ApiClient).order_by(ApiClient.name)).all()
