"""A local webhook receiver on 127.0.0.1: verifies the signature and records arrival time per job.

It shares the bench machine's cores with the service (in production the receiver, n8n, runs
elsewhere), so it is kept lean: one asyncio event loop in a thread, keep-alive HTTP/1.1 parsed by
Content-Length only, no thread per connection. http.server cost about 2 ms of CPU per webhook
(e2e rounds of 300 jobs), as much as the API's whole submit.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

from callbacks.signing import SignatureError, verify

_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class WebhookReceiver:
    """An asyncio HTTP server in a thread; `arrivals[job_id]` is the wall-clock time the webhook came."""

    def __init__(self, secret: str):
        self.secret = secret
        self.arrivals: dict[str, float] = {}
        self.bad_signatures = 0
        self.duplicates = 0
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self._awaited: set[str] = set()  # what wait_for still waits for: the waiter wakes once, at the last
        self.connections: set[asyncio.Transport] = set()  # touched on the loop's thread only
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(
            self._loop.create_server(lambda: _WebhookProtocol(self), "127.0.0.1", 0)
        )
        self._port = self._server.sockets[0].getsockname()[1]
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        """The callback URL to put in submits."""
        return f"http://127.0.0.1:{self._port}/pdf-complete"

    def start(self) -> WebhookReceiver:
        """Serve in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        async def close() -> None:
            self._server.close()
            for transport in list(self.connections):
                transport.close()
            await self._server.wait_closed()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    def record(self, headers: dict[str, str], body: bytes) -> None:
        """Check the signature and remember when this job's webhook arrived."""
        arrived = time.time()
        try:
            verify(self.secret, headers, body)
        except SignatureError:
            with self.lock:
                self.bad_signatures += 1
            return
        job_id = json.loads(body).get("job_id", "")
        with self.changed:
            if job_id in self.arrivals:
                self.duplicates += 1
            else:
                self.arrivals[job_id] = arrived
            if job_id in self._awaited:
                self._awaited.discard(job_id)
                if not self._awaited:
                    self.changed.notify_all()

    def wait_for(self, job_ids: set[str], timeout: float) -> bool:
        """Block until every job in `job_ids` had its webhook, or `timeout` seconds passed."""
        deadline = time.monotonic() + timeout
        with self.changed:
            # Woken once, by the last of them: a wake-up per webhook took CPU from the service measured.
            self._awaited = set(job_ids) - self.arrivals.keys()
            try:
                while self._awaited:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self.changed.wait(min(left, 0.5))
            finally:
                self._awaited = set()
        return True


class _WebhookProtocol(asyncio.Protocol):
    """One keep-alive connection: split the byte stream into requests, answer each with 200."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self._receiver = receiver
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        self._transport = transport  # type: ignore[assignment]
        self._receiver.connections.add(self._transport)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: D102
        self._receiver.connections.discard(self._transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:  # noqa: D102
        self._buffer += data
        while True:
            head_end = self._buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            headers = _parse_headers(self._buffer[:head_end])
            if headers is None:
                self._reject()
                return
            length = int(headers.get("content-length") or 0)
            end = head_end + 4 + length
            if len(self._buffer) < end:
                return
            body, self._buffer = self._buffer[head_end + 4:end], self._buffer[end:]
            self._receiver.record(headers, body)
            assert self._transport is not None
            self._transport.write(_ANSWER)

    def _reject(self) -> None:
        assert self._transport is not None
        self._transport.write(_BAD_REQUEST)
        self._transport.close()
        self._buffer = b""


def _parse_headers(head: bytes) -> dict[str, str] | None:
    """Lower-cased header names to values; None when the head is not a request head."""
    lines = head.decode("latin-1").split("\r\n")
    if len(lines[0].split(" ")) != 3:
        return None
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            return None
        headers[name.strip().lower()] = value.strip()
    if not headers.get("content-length", "0").isdigit():
        return None
    return headers
