from __future__ import annotations

import json
import socket
import time
from email.utils import formatdate

import pytest
from standardwebhooks.webhooks import Webhook

from callbacks import delivery, signing
from callbacks.delivery import AttemptResult, deliver, parse_retry_after
from tests.callbacks.receiver import Receiver, Reply

LOOPBACK = ["127.0.0.1"]
BODY = json.dumps({"job_id": "j1", "status": "completed"}).encode()



def _send(url: str, allowed: list[str] | None = None, timeout: float = 5.0) -> AttemptResult:
    return deliver(
        url, BODY, {"webhook-id": "msg_1"}, timeout=timeout, allowed_hosts=LOOPBACK if allowed is None else allowed
    )


def test_deliver_200_is_delivered_with_signature_intact(receiver: Receiver) -> None:
    secret = signing.new_webhook_secret()
    headers = signing.signature_headers(secret, signing.new_message_id(), int(time.time()), BODY)
    headers["X-Auth"] = "static-value"
    result = deliver(receiver.url(), BODY, headers, timeout=5, allowed_hosts=LOOPBACK)
    assert result.outcome == "delivered" and result.status_code == 200 and result.error is None
    assert result.response_excerpt == "ok" and result.duration_ms >= 0
    [seen] = receiver.requests
    assert seen.method == "POST" and seen.body == BODY
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Host"] == f"127.0.0.1:{receiver.port}"
    assert seen.headers["X-Auth"] == "static-value"
    Webhook(secret).verify(seen.body, seen.headers)
    signing.verify(secret, seen.headers, seen.body)


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.1:{port}", "127.0.0.0/8"])
def test_deliver_allowed_by_host_host_port_or_cidr(receiver: Receiver, entry: str) -> None:
    result = _send(receiver.url(), [entry.format(port=receiver.port)])
    assert result.outcome == "delivered"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "delivered"), (201, "delivered"), (204, "delivered"), (202, "delivered")]
    + [(code, "retry") for code in (429, 500, 502, 503, 504)]
    + [(code, "give_up") for code in (400, 401, 403, 404, 405, 409, 410, 413, 422)]
    + [(code, "give_up") for code in (301, 302, 303, 307, 308)],
)
def test_deliver_classifies_status(receiver: Receiver, status: int, outcome: str) -> None:
    receiver.replies["/hook"] = Reply(status, {"Location": "/elsewhere"} if 300 <= status < 400 else {}, b"")
    result = _send(receiver.url())
    assert (result.outcome, result.status_code) == (outcome, status)
    assert (result.error is None) == (outcome == "delivered")


def test_deliver_503_retries_with_message(receiver: Receiver) -> None:
    receiver.replies["/hook"] = Reply(503, body=b"down for maintenance")
    result = _send(receiver.url())
    assert result.outcome == "retry" and result.error == "receiver answered 503 Service Unavailable"
    assert result.response_excerpt == "down for maintenance" and result.retry_after is None


def test_deliver_429_honours_retry_after_seconds(receiver: Receiver) -> None:
    receiver.replies["/hook"] = Reply(429, {"Retry-After": "7"})
    result = _send(receiver.url())
    assert (result.outcome, result.retry_after) == ("retry", 7.0)


def test_deliver_410_gives_up(receiver: Receiver) -> None:
    receiver.replies["/hook"] = Reply(410)
    result = _send(receiver.url())
    assert result.outcome == "give_up" and result.error == "receiver answered 410 Gone: stopped"


def test_deliver_excerpt_is_first_500_chars(receiver: Receiver) -> None:
    receiver.replies["/hook"] = Reply(500, body=b"x" * 100_000)
    assert _send(receiver.url()).response_excerpt == "x" * 500


def test_deliver_n8n_404_gives_up_with_post_hint(receiver: Receiver) -> None:
    message = 'The workflow for execution "42" does not contain a waiting webhook with a matching path/method.'
    receiver.replies["/webhook-waiting/abc"] = Reply(404, body=json.dumps({"code": 404, "message": message}).encode())
    result = _send(receiver.url("/webhook-waiting/abc"))
    assert result.outcome == "give_up" and result.status_code == 404
    assert result.error is not None and result.error.startswith(delivery.N8N_NOT_FOUND_HINT)
    assert "HTTP Method defaults to GET" in result.error and message in result.error


def test_deliver_n8n_409_running_retries_shortly(receiver: Receiver) -> None:
    body = json.dumps({"code": 409, "message": 'The execution "42" is running already.'}).encode()
    receiver.replies["/webhook-waiting/42"] = Reply(409, body=body)
    result = _send(receiver.url("/webhook-waiting/42"))
    assert (result.outcome, result.status_code, result.retry_after) == ("retry", 409, 5.0)
    assert "still running" in (result.error or "")


@pytest.mark.parametrize(
    "message",
    [
        'The execution "42 has finished already.',
        'The execution "42" has finished with error.',
        "Execution is already being resumed by another process",
    ],
)
def test_deliver_n8n_409_finished_is_delivered(receiver: Receiver, message: str) -> None:
    receiver.replies["/webhook-waiting/42"] = Reply(409, body=json.dumps({"code": 409, "message": message}).encode())
    result = _send(receiver.url("/webhook-waiting/42"))
    assert (result.outcome, result.status_code) == ("delivered", 409)
    assert result.error is not None and result.error.startswith(delivery.N8N_ALREADY_RESUMED)


def test_deliver_409_outside_n8n_gives_up(receiver: Receiver) -> None:
    receiver.replies["/hook"] = Reply(409, body=b'{"message": "The execution \\"42\\" is running already."}')
    assert _send(receiver.url()).outcome == "give_up"


def test_deliver_hanging_receiver_times_out_and_retries(receiver: Receiver) -> None:
    receiver.replies["/slow"] = Reply(hang=True)
    started = time.monotonic()
    result = _send(receiver.url("/slow"), timeout=0.5)
    assert time.monotonic() - started < 3
    assert result.outcome == "retry" and result.status_code is None
    assert "did not answer within 0.5 s" in (result.error or "")


def test_deliver_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.replies["/hook"] = Reply(302, {"Location": receiver.url("/target")})
    result = _send(receiver.url())
    assert result.outcome == "give_up" and result.status_code == 302
    assert (result.error or "").startswith("redirect not followed")
    assert receiver.paths() == ["/hook"]


def test_deliver_redirect_to_private_address_is_not_followed(receiver: Receiver) -> None:
    receiver.replies["/hook"] = Reply(307, {"Location": "http://10.0.0.1/admin"})
    result = _send(receiver.url())
    assert result.outcome == "give_up" and receiver.paths() == ["/hook"]


@pytest.mark.parametrize("allowed", [[], ["127.0.0.2"], ["127.0.0.1:1"], ["10.0.0.0/8"], ["localhost"]])
def test_deliver_refused_url_sends_nothing(receiver: Receiver, allowed: list[str]) -> None:
    result = _send(receiver.url(), allowed)
    assert result.outcome == "give_up" and result.status_code is None
    assert "CALLBACK_ALLOWED_HOSTS" in (result.error or "")
    assert receiver.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://0x7f.1:{port}/",
        "http://u:p@127.0.0.1:{port}/",
    ],
)
def test_deliver_ssrf_forms_send_nothing(receiver: Receiver, url: str) -> None:
    result = _send(url.format(port=receiver.port), [])
    assert result.outcome == "give_up" and receiver.requests == []


def test_deliver_ipv6_loopback_when_allowed() -> None:
    try:
        server = Receiver("::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert _send(server.url(), ["::1/128"]).outcome == "delivered"
        assert server.requests[0].headers["Host"] == f"[::1]:{server.port}"
        assert _send(server.url(), ["127.0.0.0/8"]).outcome == "give_up"
        assert len(server.requests) == 1
    finally:
        server.stop()


def test_deliver_connection_refused_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _send(f"http://127.0.0.1:{port}/hook")
    assert result.outcome == "retry" and result.status_code is None
    assert result.error == f"could not connect to 127.0.0.1:{port}: Connection refused"


def _fake_resolver(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> None:
    real = socket.getaddrinfo

    def fake(host: str, port: object, *args: object, **kwargs: object) -> list:
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in names[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def test_deliver_connects_to_checked_address_keeping_host_header(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_resolver(monkeypatch, {"receiver.test": ["127.0.0.1"]})
    result = _send(f"http://receiver.test:{receiver.port}/hook", ["receiver.test"])
    assert result.outcome == "delivered"
    assert receiver.requests[0].headers["Host"] == f"receiver.test:{receiver.port}"


def test_deliver_refuses_when_any_resolved_address_is_private(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_resolver(monkeypatch, {"mixed.test": ["127.0.0.1", "10.0.0.1"]})
    result = _send(f"http://mixed.test:{receiver.port}/hook", ["127.0.0.1"])
    assert result.outcome == "give_up" and "10.0.0.1" in (result.error or "")
    assert receiver.requests == []


def test_deliver_unresolvable_host_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*args: object, **kwargs: object) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    result = _send("http://gone.test/hook")
    assert result.outcome == "retry" and "could not be resolved" in (result.error or "")


def test_deliver_non_http_scheme_gives_up() -> None:
    assert _send("ftp://127.0.0.1/x").outcome == "give_up"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7.0), (" 120 ", 120.0), ("0", 0.0), ("-3", 0.0), ("soon", None), ("", None), (None, None), ("nan", None)],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 90, usegmt=True), now=now) == pytest.approx(90.0)
    assert parse_retry_after(formatdate(now - 90, usegmt=True), now=now) == 0.0
