"""An HTTP session that connects only to the address the callback URL policy has just checked.

urllib3 used directly: `CallbackSession.post` parses the URL with `callbacks.url_policy.parse_callback_url`
(the parser of the submit check) and resolves its host with
`callbacks.url_policy.resolve_allowed_addresses` on every request (every resolved address is checked,
CALLBACK_ALLOWED_HOSTS honoured; a DNS answer may change between requests), connects to the first
usable address, and keeps the URL's host in the Host header, TLS SNI and certificate check. Keep-alive
pools are keyed by (scheme, pinned address, port, hostname), so a connection is reused only for the
address just checked; at most MAX_POOLS are kept, least recently used dropped first. Redirects are
never followed, urllib3 never retries, and no proxy or .netrc setting is read. (It replaced requests
with requests-hardened, which cost about twice the CPU per POST: bench/README.md.)
"""

from __future__ import annotations

import functools
import socket
import ssl
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from types import TracebackType

import certifi
from urllib3 import BaseHTTPResponse, HTTPConnectionPool, HTTPHeaderDict, HTTPSConnectionPool, Timeout
from urllib3.util.connection import allowed_gai_family
from urllib3.util.ssl_ import create_urllib3_context

from callbacks.url_policy import IPAddress, parse_callback_url, resolve_allowed_addresses

USER_AGENT = "pdf-job-service-webhooks/1"
MAX_POOLS = 8  # keep-alive pools per session (one per scheme, address, port and hostname)
# The headers requests sent with every request, so that receivers see the same request as before.
_DEFAULT_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", "Accept": "*/*",
                    "Connection": "keep-alive"}

PoolKey = tuple[str, str, int, str]  # scheme, pinned address, port, URL hostname


class CallbackSession:
    """Keep-alive connection pools for one sender thread; each request is checked and pinned anew."""

    def __init__(self, timeout: float, allowed_hosts: Sequence[str], max_pools: int = MAX_POOLS) -> None:
        self._timeout = timeout
        self._allowed_hosts = tuple(allowed_hosts)
        self._max_pools = max_pools
        self._pools: OrderedDict[PoolKey, HTTPConnectionPool] = OrderedDict()
        self._lock = threading.Lock()

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float | None = None
    ) -> BaseHTTPResponse:
        """POST the body to the policy-checked address of the URL's host; the caller reads and closes.

        Raises CallbackUrlError when the policy refuses the host, urllib3 errors when the request
        fails. The body is left unread: reading it to its end gives the connection back to the
        pool, `close()` before that drops it.
        """
        target = parse_callback_url(url)  # the parser the submit check used: the URL is sent as checked
        address = pick_address(resolve_allowed_addresses(target.host, target.port, self._allowed_hosts))
        pool = self._pool((target.scheme, str(address), target.port, target.host))
        sent = HTTPHeaderDict(_DEFAULT_HEADERS)
        sent.update(headers)
        sent["Host"] = target.host_header
        limit = self._timeout if timeout is None else timeout
        return pool.urlopen(
            "POST", target.request_uri, body=body, headers=sent, retries=False, redirect=False,
            assert_same_host=False, timeout=Timeout(connect=limit, read=limit), preload_content=False,
            release_conn=False, decode_content=True,
        )

    def pool_count(self) -> int:
        """How many keep-alive pools the session holds."""
        return len(self._pools)

    def close(self) -> None:
        """Close every pool and its idle connections."""
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()

    def __enter__(self) -> CallbackSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _pool(self, key: PoolKey) -> HTTPConnectionPool:
        """The pool for a key, made on first use; the least recently used one goes past MAX_POOLS."""
        evicted: HTTPConnectionPool | None = None
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            pool = self._pools[key] = _new_pool(*key, timeout=self._timeout)
            if len(self._pools) > self._max_pools:
                evicted = self._pools.popitem(last=False)[1]
        if evicted is not None:
            evicted.close()
        return pool


def _new_pool(scheme: str, address: str, port: int, hostname: str, *, timeout: float) -> HTTPConnectionPool:
    """A one-connection pool to a pinned address; for https, SNI and certificate check use the hostname."""
    host = f"[{address}]" if ":" in address else address
    limit = Timeout(connect=timeout, read=timeout)
    if scheme == "https":
        return HTTPSConnectionPool(
            host, port, timeout=limit, maxsize=1, retries=False, cert_reqs="CERT_REQUIRED",
            ssl_context=_tls_context(), server_hostname=hostname, assert_hostname=hostname,
        )
    return HTTPConnectionPool(host, port, timeout=limit, maxsize=1, retries=False)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """urllib3's default TLS settings with certifi's CA bundle (as requests used), loaded once."""
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    context.load_verify_locations(certifi.where())
    return context


def pick_address(addresses: Sequence[IPAddress]) -> IPAddress:
    """The first address urllib3 could use (IPv4 only when this host has no IPv6)."""
    if allowed_gai_family() == socket.AF_INET:
        return next((a for a in addresses if a.version == 4), addresses[0])
    return addresses[0]


def callback_session(timeout: float, allowed_hosts: Sequence[str]) -> CallbackSession:
    """A session that never redirects or retries, reads no proxy/netrc settings and pins checked addresses."""
    return CallbackSession(timeout, allowed_hosts)
