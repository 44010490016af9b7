"""S3-compatible servers on 127.0.0.1 for the tests.

- `serve_moto()`: moto's standalone S3 server (`python -m moto.server`) in a process of its own, so
  the test process never imports moto (no patching of botocore, every call goes over HTTP).
- `serve_s3_errors(status, code)`: a tiny HTTP server that answers every request with one S3 error
  (SlowDown, AccessDenied...) and counts requests, for what moto cannot be asked to do.

boto3 reads its credentials from the environment: `S3_TEST_ENV` holds static test ones, with every
other source (shared files, instance metadata) switched off so nothing leaves loopback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from ops.harness import free_port
from tests.storage.loopback_http import FakeServer, serving

S3_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "test-access-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret-key",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
REGION = "us-east-1"
START_TIMEOUT = 60.0


@contextmanager
def serve_moto(log_path: Path | None = None) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1:<free port> for the duration of the block; yields its endpoint URL.
    Its output goes to `log_path` (none: discarded)."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    env = {**os.environ, **S3_TEST_ENV}
    with open(log_path or os.devnull, "ab") as log, subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env) as process:
        try:
            _wait_until_listening(port, process)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.kill()  # its state is thrown away anyway; leaving the block waits for the exit


def _wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"moto server not listening on 127.0.0.1:{port} after {START_TIMEOUT} s")


def new_bucket(endpoint_url: str) -> str:
    """Create a bucket with a unique name on the server (tests share one server per session)."""
    import boto3

    name = f"pdfs-{uuid.uuid4().hex[:12]}"
    client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=REGION)
    client.create_bucket(Bucket=name)
    return name


def s3_client(endpoint_url: str):  # noqa: ANN201
    """A plain boto3 client of the test server, to look at what the storage did."""
    import boto3

    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=REGION)


@dataclass
class ErrorServer:
    """What the error server answers, and how many requests it has had."""

    status: int
    code: str
    endpoint_url: str = ""
    requests: int = 0


@contextmanager
def serve_s3_errors(status: int, code: str) -> Iterator[ErrorServer]:
    """A server on 127.0.0.1 answering every request with the S3 error `code` and HTTP `status`."""
    state = ErrorServer(status, code)
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>test server says {code}</Message></Error>").encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # answers botocore's "Expect: 100-continue" instead of making it wait 1 s

        def _answer(self) -> None:
            state.requests += 1
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = FakeServer(Handler)
    state.endpoint_url = server.base_url
    with serving(server):
        yield state
