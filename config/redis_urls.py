"""REDIS_URL's Redis Sentinel form (SPEC): `redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]`.

`rediss+sentinel://` speaks TLS to the sentinels and to the master. Query parameters pass TLS and
sentinel options on: `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile`, `ssl_cert_reqs`, and
`sentinel_password` when the sentinels have a password of their own (`requirepass` in sentinel.conf).
redis-py has no URL form for Sentinel; this is the one place that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")
PLAIN_SCHEMES = ("redis://", "rediss://", "unix://")
DEFAULT_SENTINEL_PORT = 26379
TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
KNOWN_OPTIONS = (*TLS_OPTIONS, "sentinel_password")
FORM = "redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]"


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed sentinel REDIS_URL: where the sentinels are and which master they watch."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    options: dict[str, str] = field(default_factory=dict, repr=False)

    def master_kwargs(self) -> dict[str, object]:
        """Connection options of the master (and replicas): db, credentials and TLS."""
        kwargs: dict[str, object] = {"db": self.db}
        if self.username:
            kwargs["username"] = self.username
        if self.password:
            kwargs["password"] = self.password
        return kwargs | self.tls_kwargs()

    def sentinel_kwargs(self) -> dict[str, object]:
        """Connection options of the sentinels themselves: their own password (if any) and TLS."""
        kwargs: dict[str, object] = self.tls_kwargs()
        if self.options.get("sentinel_password"):
            kwargs["password"] = self.options["sentinel_password"]
        return kwargs

    def tls_kwargs(self) -> dict[str, object]:
        """ssl=True and the TLS options given in the query, for rediss+sentinel://."""
        if not self.tls:
            return {}
        return {"ssl": True, **{name: self.options[name] for name in TLS_OPTIONS if name in self.options}}


def is_sentinel_url(url: str) -> bool:
    """Whether REDIS_URL names Redis Sentinel."""
    return url.startswith(SENTINEL_SCHEMES)


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Parse the sentinel form; ValueError says what is wrong and shows the form."""
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    sentinels = tuple(_host_port(item) for item in hosts.split(",") if item.strip())
    if not sentinels:
        raise ValueError(f"names no sentinel host:port; the form is {FORM}")
    path = [piece for piece in parts.path.split("/") if piece]
    if not path or len(path) > 2:
        raise ValueError(f"must name the master's service name (and optionally a db number); the form is {FORM}")
    if len(path) == 2 and not path[1].isdigit():
        raise ValueError(f"db must be a number, got {path[1]!r}; the form is {FORM}")
    options = dict(parse_qsl(parts.query))
    unknown = sorted(set(options) - set(KNOWN_OPTIONS))
    if unknown:
        raise ValueError(f"has unknown options {', '.join(unknown)}; known: {', '.join(KNOWN_OPTIONS)}")
    username, _, password = credentials.partition(":")
    return SentinelUrl(
        sentinels=sentinels,
        service_name=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
        tls=parts.scheme == "rediss+sentinel",
        options=options,
    )


def _host_port(item: str) -> tuple[str, int]:
    host, colon, port = item.strip().rpartition(":")
    if not colon:
        return item.strip(), DEFAULT_SENTINEL_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"sentinel {item.strip()!r} needs a port number 1-65535; the form is {FORM}")
    return host.strip("[]"), int(port)


def check_redis_url(url: str) -> str:
    """REDIS_URL's validator: a plain redis-py URL or a well-formed sentinel URL."""
    if is_sentinel_url(url):
        parse_sentinel_url(url)
        return url
    if not url.startswith(PLAIN_SCHEMES):
        raise ValueError(f"must start with {' or '.join(PLAIN_SCHEMES + SENTINEL_SCHEMES)}")
    return url
