"""Callback URL policy: which URLs may receive webhooks (SSRF protection).

A URL must be http(s), hold no control, format or space characters, name an ASCII host (an IP literal,
or a name: internationalised names are IDNA-encoded, non-ASCII digits refused), carry no credentials,
and every address its host resolves to must be public, unless CALLBACK_ALLOWED_HOSTS lists the host,
the host:port pair, or a CIDR holding the address. One parser (`parse_callback_url`) serves the
submit check (`check_callback_url`) and the send (`callbacks.transport`), which connects to the
address it has just checked (`resolve_allowed_addresses`) and sends the path and query as parsed.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import SplitResult, quote, urlsplit

import idna
from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")  # lower case: urlsplit lowers the host
# What a request target may hold as it is (RFC 3986 pchar, "/", "?" and escapes); urllib3 sends these unchanged
_URI_CHARS = frozenset(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/?%")
_NOT_AN_ESCAPE = re.compile(r"%(?![0-9A-F]{2})")


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
    """An accepted callback URL as the policy checks it and the connection sends it (one parse for both)."""

    scheme: str
    host: str  # ASCII (IDNA A-labels), lower case, no brackets, no trailing dot
    port: int
    request_uri: str = "/"  # path and query as sent: the query exactly as given (n8n signs resume URLs)
    port_given: bool = False  # the URL names its port, so the Host header does too

    @property
    def host_header(self) -> str:
        """The Host header for this URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port_given else host


def parse_callback_url(url: str) -> CallbackTarget:
    """Check a URL's form (characters, scheme, host, no credentials, port) without resolving it.

    The one parser of callback URLs: the submit check and the webhook sender both use its result, so a
    URL that passes at submit is sent exactly as checked. Messages never repeat the URL (its query may
    hold a token).
    """
    text = url.strip()
    _refuse_invisible(text)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise CallbackUrlError(f"callback URL is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise CallbackUrlError(
            f"callback URL scheme must be http or https, got {parts.scheme or 'none'!r}; use an http(s):// URL"
        )
    _refuse_credentials(parts)
    if port == 0:
        raise CallbackUrlError("callback URL is malformed: port 0; use a port from 1 to 65535")
    return CallbackTarget(scheme=scheme, host=_ascii_host(parts), port=port or DEFAULT_PORTS[scheme],
                          request_uri=_request_uri(parts), port_given=port is not None)


def _refuse_invisible(text: str) -> None:
    """Refuse control, format and separator characters (tab, CR, LF, NUL, spaces, zero-width ones) anywhere."""
    if text.isprintable() and " " not in text:  # the usual case, checked at C speed
        return
    position, char = next((i, ch) for i, ch in enumerate(text) if ch == " " or not ch.isprintable())
    name = unicodedata.name(char, "a control or unassigned character")
    raise CallbackUrlError(
        f"callback URL contains U+{ord(char):04X} ({name}) at position {position}; remove it "
        "(percent-encode a space in the path or query as %20)"
    )


def _ascii_host(parts: SplitResult) -> str:
    """The host of a URL as resolved and sent: an IP literal, or an ASCII name (IDNA-encoded when needed)."""
    authority = parts.netloc.rpartition("@")[2]
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise CallbackUrlError("callback URL has no host; use a full URL such as https://example.com/hook")
    if authority.startswith("["):
        if _as_address(host) is None or "%" in host:
            raise CallbackUrlError("callback URL host in [brackets] must be an IPv6 address without a zone")
        return host
    digit = next((ch for ch in host if not ch.isascii() and unicodedata.numeric(ch, None) is not None), None)
    if digit is not None:
        raise CallbackUrlError(
            f"callback host contains the non-ASCII digit {digit!r} (U+{ord(digit):04X}); write the host with "
            "ASCII digits 0-9"
        )
    if not host.isascii():
        try:  # IDNA 2008 as urllib3 encodes it: fullwidth letters and odd dots are refused, not mapped
            host = idna.encode(host, strict=True, std3_rules=True).decode("ascii")
        except idna.IDNAError as exc:
            raise CallbackUrlError(
                f"callback host is not a valid internationalised domain name ({exc}); write it in ASCII "
                "or as xn-- punycode"
            ) from None
    if not _HOST_NAME.fullmatch(host):
        raise CallbackUrlError(
            "callback host may contain only letters, digits, '-', '_' and dots between labels; check the host"
        )
    return host


def _request_uri(parts: SplitResult) -> str:
    """Path and query as sent: exactly as given, with characters a URI cannot hold (non-ASCII, `|`, ...)
    percent-encoded, as browsers and urllib3 do.

    urllib3 re-encodes a request target: it upper-cases percent-escapes, and a `%` that starts no escape
    makes it encode every `%`. Those are refused here instead, so that the target it sends is the one
    given, byte for byte (n8n checks the `signature` query parameter of its resume URLs).
    """
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    stray = _NOT_AN_ESCAPE.search(target)
    if stray is not None:
        found = target[stray.start():stray.start() + 3]
        raise CallbackUrlError(
            f"callback URL path or query has {found!r}, which is not an upper-case percent-escape: write "
            "escapes in upper case (%2F, not %2f) and a literal '%' as %25; the URL is sent exactly as given"
        )
    if all(map(_URI_CHARS.__contains__, target)):
        return target
    return "".join(ch if ch in _URI_CHARS else quote(ch, safe="") for ch in target)


def _refuse_credentials(parts: SplitResult) -> None:
    if parts.username is not None or parts.password is not None:
        raise CallbackUrlError(
            "callback URL must not contain user:password credentials; "
            "use the client's callback_auth_header for static authentication instead"
        )


def check_callback_url(url: str, allowed_hosts: Sequence[str]) -> CallbackTarget:
    """The parsed URL; CallbackUrlError unless its form and every address of its host are acceptable."""
    target = parse_callback_url(url)
    resolve_allowed_addresses(target.host, target.port, allowed_hosts)
    return target


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
