from __future__ import annotations

import ipaddress
import socket

import pytest

from callbacks.url_policy import (
    CallbackHostUnresolvedError,
    CallbackUrlError,
    blocked_reason,
    check_callback_url,
    is_address_allowed,
    parse_callback_url,
)

# (url, what the message must say, an allowed_hosts entry that lets it through)
SSRF_CASES = [
    ("http://2130706433/", "loopback", "127.0.0.1"),
    ("http://0x7f.1/", "loopback", "127.0.0.0/8"),
    ("http://127.0.0.1:8080/", "loopback", "127.0.0.1:8080"),
    ("http://localhost/", "loopback", "localhost"),
    ("http://[::1]/", "loopback", "::1/128"),
    ("http://[::ffff:127.0.0.1]/", "loopback", "127.0.0.0/8"),
    ("http://0.0.0.0/", "unspecified", "0.0.0.0"),
    ("http://[::]/", "unspecified", "::/128"),
    ("http://169.254.169.254/latest/meta-data", "link-local", "169.254.169.254"),
    ("http://10.0.0.1", "private", "10.0.0.0/8"),
    ("http://172.16.3.4", "private", "172.16.0.0/12"),
    ("http://192.168.1.1:8443/x", "private", "192.168.1.1:8443"),
    ("http://100.64.0.1", "carrier-grade NAT", "100.64.0.0/10"),
    ("http://[fd00::1]", "unique-local", "fc00::/7"),
    ("http://[fe80::1]", "link-local", "fe80::/10"),
    ("http://224.0.0.1", "multicast", "224.0.0.1"),
    ("http://240.0.0.1", "private", "240.0.0.0/4"),
    ("http://[2002:7f00:1::]/", "IPv6 form of 127.0.0.1", "2002::/16"),
    ("http://[64:ff9b::a00:1]/", "IPv6 form of 10.0.0.1", "64:ff9b::/96"),
]


@pytest.mark.parametrize(("url", "reason", "entry"), SSRF_CASES)
def test_check_callback_url_refuses_non_public_address(url: str, reason: str, entry: str) -> None:
    with pytest.raises(CallbackUrlError, match=reason) as info:
        check_callback_url(url, [])
    assert "CALLBACK_ALLOWED_HOSTS" in str(info.value)


@pytest.mark.parametrize(("url", "reason", "entry"), SSRF_CASES)
def test_check_callback_url_allows_listed_entry(url: str, reason: str, entry: str) -> None:
    check_callback_url(url, ["example.org", entry])


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.1:8080", "127.0.0.0/8", "LOCALHOST:8080"])
def test_check_callback_url_allows_loopback_by_host_port_or_cidr(entry: str) -> None:
    check_callback_url("http://localhost:8080/hook" if "LOCAL" in entry else "http://127.0.0.1:8080/hook", [entry])


@pytest.mark.parametrize(
    ("url", "entry"),
    [
        ("http://127.0.0.1:9090/", "127.0.0.1:8080"),
        ("http://10.0.0.1/", "127.0.0.0/8"),
        ("http://[::1]/", "127.0.0.0/8"),
        ("http://localhost:9090/", "localhost:8080"),
    ],
)
def test_check_callback_url_refuses_when_entry_does_not_match(url: str, entry: str) -> None:
    with pytest.raises(CallbackUrlError):
        check_callback_url(url, [entry])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://x", "scheme must be http or https"),
        ("file:///etc/passwd", "scheme must be http or https"),
        ("javascript:alert(1)", "scheme must be http or https"),
        ("example.com/hook", "scheme must be http or https"),
        ("http://user:pw@example.com", "credentials"),
        ("http://user@example.com", "credentials"),
        ("http:///path", "no host"),
        ("http://example.com:99999/", "malformed"),
    ],
)
def test_check_callback_url_refuses_bad_form_even_if_allowed(url: str, message: str) -> None:
    with pytest.raises(CallbackUrlError, match=message):
        check_callback_url(url, ["x", "example.com", "0.0.0.0/0", "::/0"])


def test_check_callback_url_unresolvable_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)  # no real DNS query from tests
    with pytest.raises(CallbackHostUnresolvedError, match="could not be resolved"):
        check_callback_url("https://no-such-host.invalid/hook", [])


def test_check_callback_url_accepts_public_address() -> None:
    check_callback_url("https://93.184.215.14/hook", [])
    check_callback_url("http://[2606:4700::1111]:8080/hook", [])


def test_check_callback_url_message_names_host_and_fix() -> None:
    with pytest.raises(CallbackUrlError) as info:
        check_callback_url("http://10.0.0.5/x", [])
    assert str(info.value) == (
        "callback host 10.0.0.5 is a private address; add it to CALLBACK_ALLOWED_HOSTS to allow it"
    )


def test_parse_callback_url_fills_default_port() -> None:
    assert parse_callback_url("HTTPS://Example.COM./a").port == 443
    assert parse_callback_url("HTTPS://Example.COM./a").host == "example.com"
    assert parse_callback_url("http://[::1]:81/").host == "::1"


@pytest.mark.parametrize("ip", ["8.8.8.8", "2606:4700::1111", "93.184.215.14"])
def test_blocked_reason_none_for_public(ip: str) -> None:
    assert blocked_reason(ipaddress.ip_address(ip)) is None


def test_is_address_allowed_by_name_port_and_cidr() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    assert is_address_allowed("8.8.8.8", 443, "dns.google", [])
    assert not is_address_allowed(loopback, 80, "localhost", [])
    assert is_address_allowed(loopback, 80, "LocalHost", ["localhost"])
    assert is_address_allowed(loopback, 80, "receiver", ["receiver:80"])
    assert not is_address_allowed(loopback, 81, "receiver", ["receiver:80"])
    assert is_address_allowed("::1", 80, "::1", ["[::1]:80"])
    assert is_address_allowed("::1", 80, "h", ["[::1]"])
    assert is_address_allowed("::ffff:10.1.2.3", 80, "h", ["10.0.0.0/8"])


def test_an_address_literal_is_not_sent_to_the_resolver(monkeypatch) -> None:
    import callbacks.url_policy as policy

    asked: list[str] = []

    def resolver(host, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        asked.append(host)
        return [(policy.socket.AF_INET, policy.socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80))]

    monkeypatch.setattr(policy.socket, "getaddrinfo", resolver)
    assert [str(a) for a in policy.resolve_host("127.0.0.1", 80)] == ["127.0.0.1"]
    assert [str(a) for a in policy.resolve_host("::1", 80)] == ["::1"]
    assert asked == []
    policy.resolve_host("0x7f.1", 80)  # not a canonical literal: the resolver expands it
    assert asked == ["0x7f.1"]
