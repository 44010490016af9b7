"""A real HTTP receiver on 127.0.0.1 for delivery tests: records requests, answers per path."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Recorded:
    """One request the receiver saw."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    """How the receiver answers a path.

    `hang` waits without answering; `drip` starts an answer and sends one header byte every 0.2 s
    (never finishing, but never silent for long enough to hit a read timeout); `delay` waits that
    many seconds before answering. The first two last until the receiver stops (10 s at most).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hang: bool = False
    drip: bool = False
    delay: float = 0.0


class Receiver:
    """A ThreadingHTTPServer in a background thread; `replies` maps a path to its Reply.

    With `keep_alive` it answers in HTTP/1.1 and keeps connections open; `connections` counts the
    connections it accepted.
    """

    def __init__(self, host: str = "127.0.0.1", *, keep_alive: bool = False, port: int = 0) -> None:
        self.host = host
        self.requests: list[Recorded] = []
        self.replies: dict[str, Reply] = {}
        self.connections = 0
        self.release = threading.Event()
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        handler = _handler_for(self)
        if keep_alive:
            handler.protocol_version = "HTTP/1.1"
        self._server = server_class((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def port(self) -> int:
        """The ephemeral port the receiver listens on."""
        return self._server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        """The receiver's URL for a path."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}{path}"

    def paths(self) -> list[str]:
        """Paths of the requests seen so far."""
        return [recorded.path for recorded in self.requests]

    def start(self) -> Receiver:
        """Start serving in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging handlers and stop serving."""
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def setup(self) -> None:
            super().setup()
            receiver.connections += 1

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            receiver.requests.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
            reply = receiver.replies.get(self.path.split("?")[0], Reply())
            if reply.hang:
                receiver.release.wait(10)
                return
            if reply.drip:
                deadline = time.monotonic() + 10
                try:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
                    while not receiver.release.wait(0.2) and time.monotonic() < deadline:
                        self.wfile.write(b".")
                except OSError:  # the client gave up (or was killed)
                    pass
                return
            receiver.release.wait(reply.delay)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_POST = _answer  # noqa: N815
        do_GET = _answer  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Keep test output quiet."""

    return Handler
