"""API-key authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>`.

`identify` runs before every request (before the rate limits, which count per client). Valid keys are
cached per process, and the cache holds only while the Redis counter CLIENTS_VERSION_KEY keeps its value:
every CLI change of a client bumps it, so a disabled, rotated or revoked key stops working in every API
process at its next request. While Redis does not answer, every lookup goes to SQL. Failed lookups are
counted per source address (AUTH_FAILURE_LIMIT) and logged with a hash prefix of the key, never the key.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from api.errors import ApiError, AuthenticationError, ServiceUnavailableError
from api.extension import runtime
from api.limits import auth_refusal, count_auth_failure, hold_refusal, outage, refuse_if_blocked
from config import ClientConfig
from store.clients import CLIENTS_VERSION_KEY, KEY_CACHE_SECONDS, KeyMatch, find_client_by_key, hash_key
from store.models import utcnow
from store.sealed import SealedSecretError

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
CACHE = "pdfjobs_auth_cache"
_UNKNOWN = object()  # the version while Redis does not answer


@dataclass
class KeyCache:
    """Per process: clients of valid keys by key hash, for one value of the clients version."""

    version: object = _UNKNOWN
    entries: dict[str, tuple[float, ClientConfig]] = field(default_factory=dict)

    def get(self, digest: str, version: object) -> ClientConfig | None:
        """The cached client of a key hash, when cached under `version` and still valid."""
        if version is _UNKNOWN or version != self.version:
            self.entries.clear()
            self.version = version
            return None
        hit = self.entries.get(digest)
        if hit is None or time.monotonic() >= hit[0]:
            return None
        return hit[1]

    def put(self, digest: str, version: object, match: KeyMatch) -> None:
        """Cache a valid key's client until KEY_CACHE_SECONDS pass or the key's grace period ends."""
        if version is _UNKNOWN or version != self.version:
            return
        seconds = KEY_CACHE_SECONDS
        if match.expires_at is not None:
            seconds = min(seconds, (match.expires_at - utcnow()).total_seconds())
        self.entries[digest] = (time.monotonic() + seconds, match.client)


def install_auth(app: Flask) -> None:
    """Identify the client of every request that presents a key (before the rate limits run)."""
    app.extensions[CACHE] = KeyCache()
    app.before_request(identify)


def presented_key() -> str | None:
    """The API key sent with the request, if any."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.headers.get("X-API-Key", "").strip() or None


def identify() -> None:
    """Set `g.client` to the client of the presented key, or None (no key, or an invalid one); a key this
    process has just refused for its client's rate limit gets its 429 at once."""
    key = presented_key()
    g.client = None
    if key:
        g.key_digest = hash_key(key)
        refuse_if_blocked(g.key_digest)
        g.client = _lookup(key, g.key_digest)


def authenticate() -> ClientConfig:
    """The client that made this request; raises AuthenticationError (401) otherwise."""
    if "client" not in g:
        identify()
    if g.client is not None:
        return g.client
    if not presented_key():
        raise AuthenticationError(
            "Missing API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
        )
    raise AuthenticationError("Invalid API key: check the key, or create a client with the CLI.")


def _lookup(key: str, digest: str) -> ClientConfig | None:
    cache: KeyCache = current_app.extensions[CACHE]
    version = _clients_version()
    client = cache.get(digest, version)
    if client is not None:
        return client
    source = request.remote_addr or "unknown"
    wait = auth_refusal(source)
    if wait is not None:
        hold_refusal(wait)
        log.info("event=auth_refused reason=too_many_failures source=%s key_sha256=%s retry_after=%s",
                 source, digest[:8], wait)
        raise ApiError(f"Too many failed authentications from {source}; retry after {wait} s with a valid key.",
                       status_code=429, error="too_many_auth_failures", headers={"Retry-After": str(wait)})
    match = _find(key)
    if match is None:
        count_auth_failure(source)
        log.info("event=auth_failed source=%s key_sha256=%s method=%s path=%r", source, digest[:8],
                 request.method, request.path)
        return None
    cache.put(digest, version, match)
    return match.client


def _find(key: str) -> KeyMatch | None:
    rt = runtime()
    try:
        with rt.session() as session:
            return find_client_by_key(session, rt.settings.api_clients, key, keys=rt.settings.secrets_encryption_key)
    except SQLAlchemyError as exc:
        log.warning("event=auth_unavailable reason=%r", type(exc).__name__)
        raise ServiceUnavailableError("The client database does not answer; retry in a few seconds.",
                                      retry_after=5, error="dependency_unavailable") from None
    except SealedSecretError as exc:  # SECRETS_ENCRYPTION_KEY lost or changed: the operator must fix it
        log.error("event=auth_unavailable reason=%r", str(exc))
        raise ServiceUnavailableError("The service cannot read its client secrets; the operator has been told "
                                      "(log).", retry_after=60, error="dependency_unavailable") from None


def _clients_version() -> object:
    """The clients version in Redis (bytes, or None when never bumped); _UNKNOWN while Redis does not answer."""
    state = outage()
    if state.down():
        return _UNKNOWN
    try:
        version = runtime().redis.get(CLIENTS_VERSION_KEY)
    except RedisError as exc:
        state.failed("client version", exc)
        return _UNKNOWN
    state.answered()
    return version


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
