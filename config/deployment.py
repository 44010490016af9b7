"""Start-time checks of a deployment's settings that are legal but wrong with several hosts."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from config.redis_urls import is_sentinel_url, parse_sentinel_url
from config.settings import Settings

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str | None) -> bool:
    """Whether a host name or address is this machine only (None, a socket path's empty host, counts)."""
    if not host:
        return True
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def external_hosts(settings: Settings) -> list[str]:
    """What makes this a multi-host deployment: a non-loopback bind address, Redis or SQL server."""
    found = []
    if not is_loopback(settings.host):
        found.append(f"HOST={settings.host}")
    if settings.redis_url:
        if is_sentinel_url(settings.redis_url):
            hosts = [host for host, _ in parse_sentinel_url(settings.redis_url).sentinels]
        else:
            hosts = [urlsplit(settings.redis_url).hostname or ""]
        if not all(is_loopback(host) for host in hosts):
            found.append("REDIS_URL")
    if settings.database_url and not is_loopback(_sql_host(settings.database_url)):
        found.append("DATABASE_URL")
    return found


def _sql_host(url: str) -> str | None:
    if url.startswith("sqlite"):
        return None
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def public_base_url_problem(settings: Settings) -> str | None:
    """The warning to print when a deployment reachable from other hosts leaves PUBLIC_BASE_URL on loopback."""
    reasons = external_hosts(settings)
    if not reasons:
        return None
    base = settings.public_base_url
    if base and not is_loopback(urlsplit(base).hostname):
        return None
    shown = base or f"unset (http://127.0.0.1:{settings.port})"
    return (f"PUBLIC_BASE_URL is {shown} but this deployment is reachable from other hosts "
            f"({', '.join(reasons)}): webhook download_url links will point at 127.0.0.1 of the host that "
            "rendered the PDF. Set PUBLIC_BASE_URL to the address clients use for the API (for example "
            "https://pdf.example.com); it is required with several hosts.")
