"""Serving a fake HTTP API on 127.0.0.1 from a background thread, for the storage fakes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, TypeVar


class _Fake(Protocol):
    base_url: str


Fake = TypeVar("Fake", bound=_Fake)


class FakeServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer on a free 127.0.0.1 port that carries the fake's state for its handler."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], fake: Any = None):
        super().__init__(("127.0.0.1", 0), handler)
        self.fake = fake
        self.base_url = f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[None]:
    """Serve `server` in a daemon thread for the duration of the block, then shut it and its socket down."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def serve_fake(handler: type[BaseHTTPRequestHandler], fake: Fake) -> Iterator[Fake]:
    """Serve `fake` (state with a `base_url` to fill in) through `handler` for the duration of the block."""
    server = FakeServer(handler, fake)
    fake.base_url = server.base_url
    with serving(server):
        yield fake
