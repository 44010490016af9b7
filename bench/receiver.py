"""A local webhook receiver on 127.0.0.1: verifies the signature and records arrival time per job."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from callbacks.signing import SignatureError, verify


class WebhookReceiver:
    """ThreadingHTTPServer in a thread; `arrivals[job_id]` is the wall-clock time the webhook came."""

    def __init__(self, secret: str):
        self.secret = secret
        self.arrivals: dict[str, float] = {}
        self.bad_signatures = 0
        self.duplicates = 0
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        """The callback URL to put in submits."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/pdf-complete"

    def start(self) -> WebhookReceiver:
        """Serve in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

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
            self.changed.notify_all()

    def wait_for(self, job_ids: set[str], timeout: float) -> bool:
        """Block until every job in `job_ids` had its webhook, or `timeout` seconds passed."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not job_ids <= self.arrivals.keys():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 0.5))
        return True


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            receiver.record(dict(self.headers.items()), body)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet."""

    return Handler
