"""Callback URL policy: which URLs may receive webhooks (SSRF protection).

A URL must be http(s), name a host, carry no credentials, and every address its host resolves to must
be public, unless CALLBACK_ALLOWED_HOSTS lists the host, the host:port pair, or a CIDR holding the
address. The same checks run at submit time (`check_callback_url`) and at send time, on the address
the connection is then pinned to (`resolve_allowed_addresses`, used by `callbacks.delivery`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import SplitResult, urlsplit

from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class CallbackUrlError(Exception):
    """A callback URL is refused by the policy; the message says why and how to fix it.

    Not a ValueError on purpose: `callbacks.delivery` counts a ValueError raised while sending (a
    header value http.client refuses, urllib3's LocationValueError) as a failed request, and a
    refusal must stay apart from those (it gives up, or retries when the host did not resolve).
    """


class CallbackHostUnresolvedError(CallbackUrlError):
    """A callback host did not resolve (may be transient at send time)."""


@dataclass(frozen=True)
class CallbackTarget:
    """The parts of an accepted callback URL that the policy and the connection need."""

    scheme: str
    host: str
    port: int


def parse_callback_url(url: str) -> CallbackTarget:
    """Check a URL's form (scheme, host, no credentials, port) without resolving it."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise CallbackUrlError(f"callback URL {url!r} is malformed: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise CallbackUrlError(
            f"callback URL scheme must be http or https, got {parts.scheme or 'none'!r}; use an http(s):// URL"
        )
    _refuse_credentials(parts)
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise CallbackUrlError(f"callback URL {url!r} has no host; use a full URL such as https://example.com/hook")
    return CallbackTarget(scheme=scheme, host=host, port=port or DEFAULT_PORTS[scheme])


def _refuse_credentials(parts: SplitResult) -> None:
    if parts.username is not None or parts.password is not None:
        raise CallbackUrlError(
            "callback URL must not contain user:password credentials; "
            "use the client's callback_auth_header for static authentication instead"
        )


def check_callback_url(url: str, allowed_hosts: Sequence[str]) -> None:
    """Raise CallbackUrlError unless the URL and every address of its host are acceptable."""
    target = parse_callback_url(url)
    resolve_allowed_addresses(target.host, target.port, allowed_hosts)


def resolve_allowed_addresses(host: str, port: int, allowed_hosts: Sequence[str]) -> list[IPAddress]:
    """Resolve a host once and return its addresses, raising CallbackUrlError if any is refused."""
    addresses = resolve_host(host, port)
    for address in addresses:
        if not is_address_allowed(address, port, host, allowed_hosts):
            raise CallbackUrlError(_refusal_message(host, address))
    return addresses


def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Return the distinct addresses of a host in resolver order (numeric forms such as 0x7f.1 expand)."""
    literal = _as_address(host) if "%" not in host else None  # scoped IPv6 forms go to the resolver
    if literal is not None:  # nothing to resolve (and under gevent a lookup costs a trip to a thread)
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise CallbackHostUnresolvedError(
            f"callback host {host} could not be resolved ({exc}); check the host name in the URL"
        ) from exc
    addresses: list[IPAddress] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise CallbackHostUnresolvedError(f"callback host {host} has no IPv4 or IPv6 address")
    return addresses


def _refusal_message(host: str, address: IPAddress) -> str:
    reason = blocked_reason(address) or "not allowed"
    if _as_address(host) == address:
        return f"callback host {host} is {reason}; add it to CALLBACK_ALLOWED_HOSTS to allow it"
    return (
        f"callback host {host} resolves to {address}, {reason}; "
        f"add {host} or {address} to CALLBACK_ALLOWED_HOSTS to allow it"
    )


@lru_cache(maxsize=1024)
def blocked_reason(address: IPAddress) -> str | None:
    """Return why an address is not public (e.g. "a private address"), or None if it is public.

    Cached: every submit and every webhook attempt checks its callback's addresses, mostly the same
    few, and the checks walk ipaddress's special-purpose network lists.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = blocked_reason(embedded)
            return f"an IPv6 form of {embedded}, which is {inner}" if inner else "an IPv6 translation address"
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address (this range holds cloud metadata services)"),
        (address in _CGNAT, "a carrier-grade NAT address (100.64.0.0/10)"),
        (address.is_multicast, "a multicast address"),
        (_is_unique_local(address), "an IPv6 unique-local address (fc00::/7)"),
        (_is_site_local(address), "an IPv6 site-local address (fec0::/10)"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (any(address in net for net in EXTRA_BLOCKED_NET_RANGES), "a special-purpose address"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for blocked, reason in checks if blocked), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 IPv6 address, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_unique_local(address: IPAddress) -> bool:
    return isinstance(address, ipaddress.IPv6Address) and address in ipaddress.ip_network("fc00::/7")


def _is_site_local(address: IPAddress) -> bool:
    return isinstance(address, ipaddress.IPv6Address) and address.is_site_local


def is_address_allowed(ip: IPAddress | str, port: int, host: str, allowed_hosts: Sequence[str]) -> bool:
    """Return True if the address is public, or the host, host:port or address is in allowed_hosts."""
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    return blocked_reason(address) is None or is_listed(address, port, host, allowed_hosts)


def is_listed(address: IPAddress, port: int, host: str, allowed_hosts: Sequence[str]) -> bool:
    """Return True if an allowed_hosts entry names the host, the host:port pair, or a CIDR holding the address."""
    name = host.lower().rstrip(".")
    candidates = _comparable_forms(address)
    for entry in allowed_hosts:
        network = _as_network(entry)
        if network is not None:
            if any(candidate in network for candidate in candidates if candidate.version == network.version):
                return True
            continue
        entry_host, entry_port = _split_host_port(entry)
        if entry_port not in (None, port):
            continue
        if entry_host == name or _as_address(entry_host) in candidates:
            return True
    return False


def _comparable_forms(address: IPAddress) -> list[IPAddress]:
    """The address, plus the IPv4 address it maps when it is an IPv4-mapped IPv6 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return [address, address.ipv4_mapped]
    return [address]


@lru_cache(maxsize=1024)  # the CALLBACK_ALLOWED_HOSTS entries, parsed once instead of at every check
def _as_network(entry: str) -> IPNetwork | None:
    text = entry.strip()
    if text.startswith("["):
        text = text[1:].removesuffix("]")
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _as_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _split_host_port(entry: str) -> tuple[str, int | None]:
    """Split `host`, `host:port` or `[v6]:port` into a lower-case host and an optional port."""
    text = entry.strip().lower()
    if text.startswith("["):
        inner, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        return inner, int(port_text) if port_text.isdigit() else None
    name, sep, port_text = text.rpartition(":")
    if sep and port_text.isdigit() and ":" not in name:
        return name.rstrip("."), int(port_text)
    return text.rstrip("."), None
