from __future__ import annotations

import datetime
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from urllib3.util.ssl_ import create_urllib3_context

from callbacks import transport
from callbacks.delivery import AttemptResult, deliver
from callbacks.transport import CallbackSession, callback_session
from tests.callbacks.receiver import Receiver, Reply

BODY = json.dumps({"job_id": "j1", "status": "completed"}).encode()
HOSTS = ["a.test", "b.test", "c.test", "moving.test", "127.0.0.1"]


@pytest.fixture
def keep_alive() -> Iterator[Receiver]:
    server = Receiver(keep_alive=True).start()
    yield server
    server.stop()


def _resolver(monkeypatch: pytest.MonkeyPatch, names: dict[str, str]) -> None:
    """Resolve the names to the addresses the dict holds when asked (it may change between calls)."""
    real = socket.getaddrinfo

    def fake(host: str, port: object, *args: object, **kwargs: object) -> list:
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def _send(session: CallbackSession, url: str) -> AttemptResult:
    return deliver(url, BODY, {"webhook-id": "msg_1"}, timeout=5, allowed_hosts=HOSTS, session=session)


def test_session_reuses_connection_for_same_url(keep_alive: Receiver) -> None:
    with callback_session(5, HOSTS) as session:
        assert [_send(session, keep_alive.url()).outcome for _ in range(3)] == ["delivered"] * 3
    assert keep_alive.connections == 1 and len(keep_alive.requests) == 3


def test_session_sends_requests_headers(keep_alive: Receiver) -> None:
    with callback_session(5, HOSTS) as session:
        _send(session, keep_alive.url("/hook?a=1"))
    [seen] = keep_alive.requests
    assert seen.path == "/hook?a=1" and seen.body == BODY
    assert seen.headers["User-Agent"] == transport.USER_AGENT
    assert seen.headers["Content-Length"] == str(len(BODY))
    assert (seen.headers["Accept"], seen.headers["Accept-Encoding"]) == ("*/*", "gzip, deflate")


def test_session_new_pool_when_host_resolves_elsewhere(keep_alive: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        other = Receiver("127.0.0.2", keep_alive=True, port=keep_alive.port).start()
    except OSError:
        pytest.skip("127.0.0.2 is not usable here")
    names = {"moving.test": "127.0.0.1"}
    _resolver(monkeypatch, names)
    url = f"http://moving.test:{keep_alive.port}/hook"
    try:
        with callback_session(5, HOSTS) as session:
            assert _send(session, url).outcome == "delivered"
            names["moving.test"] = "127.0.0.2"
            assert _send(session, url).outcome == "delivered"
            assert session.pool_count() == 2
            names["moving.test"] = "127.0.0.1"
            assert _send(session, url).outcome == "delivered"
    finally:
        other.stop()
    assert (len(keep_alive.requests), keep_alive.connections) == (2, 1)
    assert (len(other.requests), other.connections) == (1, 1)
    assert other.requests[0].headers["Host"] == f"moving.test:{keep_alive.port}"


def test_session_pools_are_per_hostname(keep_alive: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    _resolver(monkeypatch, {"a.test": "127.0.0.1", "b.test": "127.0.0.1"})
    with callback_session(5, HOSTS) as session:
        for name in ("a.test", "b.test", "a.test"):
            assert _send(session, f"http://{name}:{keep_alive.port}/hook").outcome == "delivered"
        assert session.pool_count() == 2
    assert keep_alive.connections == 2
    assert [seen.headers["Host"].split(":")[0] for seen in keep_alive.requests] == ["a.test", "b.test", "a.test"]


def test_session_closes_connection_after_body_over_read_limit(keep_alive: Receiver) -> None:
    keep_alive.replies["/big"] = Reply(body=b"x" * 10_000)
    with callback_session(5, HOSTS) as session:
        assert _send(session, keep_alive.url("/big")).response_excerpt == "x" * 500
        assert _send(session, keep_alive.url()).outcome == "delivered"
        assert _send(session, keep_alive.url()).outcome == "delivered"
    assert keep_alive.connections == 2


def test_session_keeps_connection_after_body_within_read_limit(keep_alive: Receiver) -> None:
    keep_alive.replies["/hook"] = Reply(503, body=b"y" * 4096)
    with callback_session(5, HOSTS) as session:
        assert _send(session, keep_alive.url()).outcome == "retry"
        assert _send(session, keep_alive.url()).outcome == "retry"
    assert keep_alive.connections == 1


def test_session_pool_cache_is_bounded(keep_alive: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    _resolver(monkeypatch, {"a.test": "127.0.0.1", "b.test": "127.0.0.1", "c.test": "127.0.0.1"})
    session = CallbackSession(5, HOSTS, max_pools=2)
    with session:
        for name in ("a.test", "b.test", "c.test", "b.test", "a.test"):
            assert _send(session, f"http://{name}:{keep_alive.port}/hook").outcome == "delivered"
            assert session.pool_count() <= 2
    assert session.pool_count() == 0
    assert keep_alive.connections == 4  # a, b, c; b kept (recently used), a evicted by c and reopened


def test_session_refusal_opens_no_pool(keep_alive: Receiver) -> None:
    with callback_session(5, ["a.test"]) as session:
        assert _send(session, keep_alive.url()).outcome == "give_up"
        assert session.pool_count() == 0
    assert keep_alive.requests == []


@pytest.mark.parametrize(
    ("content_type", "body", "excerpt"),
    [
        (None, "café".encode(), "café"),
        ("application/json", "café".encode(), "café"),
        ("text/plain", "café".encode("latin-1"), "café"),
        ("text/plain; charset='utf-16'", "hé".encode("utf-16"), "hé"),
        ("text/plain; charset=no-such-codec", "café".encode(), "café"),
    ],
)
def test_deliver_decodes_excerpt_like_requests(
    receiver: Receiver, content_type: str | None, body: bytes, excerpt: str
) -> None:
    receiver.replies["/hook"] = Reply(500, {"Content-Type": content_type} if content_type else {}, body)
    with callback_session(5, HOSTS) as session:
        assert _send(session, receiver.url()).response_excerpt == excerpt


def _certificates(directory: Path, hostname: str) -> tuple[Path, Path]:
    """A test CA and a server certificate for `hostname` it signed: (CA file, certificate + key file)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook test CA")])

    def builder(subject: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(hours=1)))

    ca = (builder(ca_name, ca_key).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    server = (builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]), server_key)
              .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .sign(ca_key, hashes.SHA256()))
    ca_file, chain_file = directory / "ca.pem", directory / "server.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    chain_file.write_bytes(server.public_bytes(serialization.Encoding.PEM) + key_pem)
    return ca_file, chain_file


@pytest.fixture
def tls_receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Receiver, list[str | None], Path]]:
    """An HTTPS receiver on 127.0.0.1 with a certificate for a.test; yields it, the SNI names seen, the CA file."""
    ca_file, chain_file = _certificates(tmp_path, "a.test")
    server = Receiver(keep_alive=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain_file)
    names: list[str | None] = []
    context.sni_callback = lambda _sock, name, _context: names.append(name)  # type: ignore[assignment,misc,func-returns-value]
    server._server.socket = context.wrap_socket(server._server.socket, server_side=True)
    _resolver(monkeypatch, {"a.test": "127.0.0.1", "b.test": "127.0.0.1"})
    server.start()
    yield server, names, ca_file
    server.stop()


def test_deliver_https_checks_certificate_against_url_hostname(
    tls_receiver: tuple[Receiver, list[str | None], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, names, ca_file = tls_receiver
    url = f"https://a.test:{server.port}/hook"
    with callback_session(5, HOSTS) as session:
        untrusted = _send(session, url)  # the test CA is not in certifi's bundle
    assert untrusted.outcome == "retry" and "certificate verify failed" in (untrusted.error or "")
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    context.load_verify_locations(ca_file)
    monkeypatch.setattr(transport, "_tls_context", lambda: context)
    with callback_session(5, HOSTS) as session:
        assert _send(session, url).outcome == "delivered"
        assert _send(session, url).outcome == "delivered"
        wrong_name = _send(session, f"https://b.test:{server.port}/hook")  # same address, other hostname
    assert wrong_name.outcome == "retry" and (wrong_name.error or "").startswith("TLS error talking to b.test:")
    assert names == ["a.test", "a.test", "b.test"]  # SNI; the second delivery reused the connection
    assert [seen.headers["Host"] for seen in server.requests] == [f"a.test:{server.port}"] * 2
