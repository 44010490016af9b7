"""API-key authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request

from api.errors import AuthenticationError
from api.extension import runtime
from config import ClientConfig
from store.clients import find_client_by_key, hash_key

F = TypeVar("F", bound=Callable[..., Any])
_CACHE_SECONDS = 30.0


def presented_key() -> str | None:
    """The API key sent with the request, if any."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.headers.get("X-API-Key", "").strip() or None


def authenticate() -> ClientConfig:
    """The client that made this request; raises AuthenticationError (401) otherwise."""
    key = presented_key()
    if not key:
        raise AuthenticationError(
            "Missing API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
        )
    client = _lookup(key)
    if client is None:
        raise AuthenticationError("Invalid API key: check the key, or create a client with the CLI.")
    return client


def _lookup(key: str) -> ClientConfig | None:
    # Positive lookups are cached per process so a request costs no SQL query for auth.
    cache: dict[str, tuple[float, ClientConfig]] = current_app.extensions.setdefault("pdfjobs_auth_cache", {})
    digest = hash_key(key)
    hit = cache.get(digest)
    now = time.monotonic()
    if hit is not None and now - hit[0] < _CACHE_SECONDS:
        return hit[1]
    rt = runtime()
    with rt.session() as session:
        client = find_client_by_key(session, rt.settings.api_clients, key)
    if client is not None:
        cache[digest] = (now, client)
    return client


def require_client(view: F) -> F:
    """Decorator: authenticate the request and keep the client in `g.client`."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.client = authenticate()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def current_client() -> ClientConfig:
    """The authenticated client of this request."""
    return g.client


def check_basic_auth(username: str, password: str | None) -> bool:
    """Whether the request carries these HTTP basic-auth credentials (constant-time)."""
    auth = request.authorization
    if password is None or auth is None or auth.username is None or auth.password is None:
        return False
    return hmac.compare_digest(auth.username, username) & hmac.compare_digest(auth.password, password)
