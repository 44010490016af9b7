"""The real gunicorn API under supervisord: idle keep-alive connections, broken framing, deep JSON."""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest

from ops.harness import RunningService
from tests.conftest import auth, sample_request

pytestmark = pytest.mark.sqlite_only  # HTTP edges, not SQL: SQLite only (tests/conftest.py)

SUBMITS = ("/api/reports/generate-async", "/api/reports/generate")


def _submit(connection: http.client.HTTPConnection, code: str) -> int:
    body = json.dumps(sample_request() | {"code": code})
    connection.request("POST", SUBMITS[0], body=body, headers=auth() | {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response.status


def test_a_connection_idle_for_3_and_10_seconds_is_reused_without_reset(service: RunningService) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    assert _submit(connection, "keep-alive-0") == 202
    local = connection.sock.getsockname()
    for idle in (3, 10):  # past gunicorn's default keep-alive (2 s); clients keep idle connections 4-60 s
        time.sleep(idle)
        assert _submit(connection, f"keep-alive-{idle}") == 202  # http.client never reconnects by itself
        assert connection.sock.getsockname() == local  # the same connection: the server kept it open
    connection.close()


def _raw_request(service: RunningService, head: str, body: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (no client library fixes the framing) and read the status and body."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(head.encode() + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def _head(path: str, framing: str) -> str:
    key = auth()["Authorization"]
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {key}\r\n"
            f"Content-Type: application/json\r\n{framing}\r\nConnection: close\r\n\r\n")


@pytest.mark.parametrize("path", SUBMITS)
def test_a_malformed_chunked_body_is_400(service: RunningService, path: str) -> None:
    status, body = _raw_request(service, _head(path, "Transfer-Encoding: chunked"), b"zz\r\n{}\r\n0\r\n\r\n")
    assert status == 400, body
    assert json.loads(body)["error"] == "malformed_body"


@pytest.mark.parametrize("path", SUBMITS)
@pytest.mark.parametrize("depth", [10_000, 50_000])
def test_json_nested_thousands_deep_is_400_under_gunicorn(service: RunningService, path: str, depth: int) -> None:
    payload = ('{"data": ' + "[" * depth + "]" * depth + "}").encode()
    status, body = _raw_request(service, _head(path, f"Content-Length: {len(payload)}"), payload)
    assert status == 400 and json.loads(body)["error"] == "invalid_json", body
