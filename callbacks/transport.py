"""An HTTP session that connects only to the address the callback URL policy has just checked.

Built on requests-hardened (1.3.0): its `HTTPSession` enforces "never redirect" and a default
timeout, and its `IPFilterAdapter` resolves the host once, checks the address and pins the connection
to it (the URL's host stays in the Host header, SNI and certificate check). Its own filter cannot be
configured (it checks only the first address and knows no allow-list beyond "loopback"), so
`PolicyPinningAdapter` keeps its pinning steps and swaps the filter for `callbacks.url_policy`: every
resolved address is checked, CALLBACK_ALLOWED_HOSTS honoured, and the first address is connected to.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from urllib3.util.connection import allowed_gai_family

from callbacks.url_policy import DEFAULT_PORTS, IPAddress, resolve_allowed_addresses

USER_AGENT = "pdf-job-service-webhooks/1"


class PolicyPinningAdapter(IPFilterAdapter):
    """requests-hardened's IP-pinning adapter, with `callbacks.url_policy` deciding which addresses pass."""

    def __init__(self, *, is_https_proto: bool, allowed_hosts: Sequence[str]) -> None:
        super().__init__(is_https_proto=is_https_proto, allow_loopback=False, tls_sni_support=True)
        self._allowed_hosts = tuple(allowed_hosts)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Pin the pool key to a checked address; raises CallbackUrlError when the policy refuses."""
        # Skip IPFilterAdapter's own version (it would run its fixed filter), keep HTTPAdapter's.
        host_params, pool_kwargs = HTTPAdapter.build_connection_pool_key_attributes(self, request, verify, cert)
        hostname: str = host_params["host"]
        port: int | None = host_params["port"]
        # The steps below mirror IPFilterAdapter.build_connection_pool_key_attributes.
        request.headers = CaseInsensitiveDict(request.headers or {})
        host_header = f"[{hostname}]" if ":" in hostname else hostname
        request.headers["Host"] = host_header if port is None else f"{host_header}:{port}"
        if self._is_https_proto:
            pool_kwargs["assert_hostname"] = hostname
            pool_kwargs["server_hostname"] = hostname
        effective_port = port or DEFAULT_PORTS[host_params["scheme"]]
        address = pick_address(resolve_allowed_addresses(hostname, effective_port, self._allowed_hosts))
        host_params["host"] = str(address) if address.version == 4 else f"[{address}]"
        return host_params, pool_kwargs


def pick_address(addresses: Sequence[IPAddress]) -> IPAddress:
    """The first address urllib3 could use (IPv4 only when this host has no IPv6)."""
    if allowed_gai_family() == socket.AF_INET:
        return next((a for a in addresses if a.version == 4), addresses[0])
    return addresses[0]


def callback_session(timeout: float, allowed_hosts: Sequence[str]) -> requests.Session:
    """A session that never redirects, ignores proxy/netrc settings and pins checked addresses."""
    config = Config(
        ip_filter_enable=False,  # replaced by PolicyPinningAdapter, mounted below
        ip_filter_allow_loopback_ips=False,
        never_redirect=True,
        default_timeout=(timeout, timeout),
        user_agent_override=USER_AGENT,
    )
    session = HTTPSession(config)
    session.trust_env = False  # no HTTP(S)_PROXY (would bypass pinning), no .netrc credentials
    session.mount("http://", PolicyPinningAdapter(is_https_proto=False, allowed_hosts=allowed_hosts))
    session.mount("https://", PolicyPinningAdapter(is_https_proto=True, allowed_hosts=allowed_hosts))
    return session
