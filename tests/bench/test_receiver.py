"""The bench's webhook receiver: signed arrivals recorded per job, and a waiter woken only by the last one."""

from __future__ import annotations

import http.client
import json
import threading
import time

from bench.receiver import WebhookReceiver
from callbacks.signing import new_webhook_secret, signature_headers


def _post(receiver: WebhookReceiver, job_id: str, secret: str) -> int:
    body = json.dumps({"job_id": job_id}).encode()
    headers = signature_headers(secret, f"msg_{job_id}", int(time.time()), body)
    port = int(receiver.url.split(":")[2].split("/")[0])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", "/pdf-complete", body, {**headers, "Content-Type": "application/json"})
        return connection.getresponse().status
    finally:
        connection.close()


def test_wait_for_returns_when_the_last_awaited_webhook_arrives() -> None:
    secret = new_webhook_secret()
    receiver = WebhookReceiver(secret).start()
    try:
        assert _post(receiver, "a", secret) == 200  # arrived before the wait: already counted
        done = threading.Event()
        waiter = threading.Thread(target=lambda: receiver.wait_for({"a", "b", "c"}, 10) and done.set())
        waiter.start()
        assert _post(receiver, "b", secret) == 200
        assert not done.wait(0.3)  # "c" is still missing
        assert _post(receiver, "c", secret) == 200
        assert done.wait(2)  # woken by the last one, well before its 0.5 s re-check
        waiter.join(5)
        assert set(receiver.arrivals) == {"a", "b", "c"} and receiver.bad_signatures == 0
        assert receiver.wait_for({"d"}, 0.2) is False  # never came: the timeout answers
    finally:
        receiver.stop()


def test_a_webhook_with_a_bad_signature_is_counted_not_recorded() -> None:
    receiver = WebhookReceiver(new_webhook_secret()).start()
    try:
        assert _post(receiver, "x", new_webhook_secret()) == 200
        deadline = time.monotonic() + 5
        while receiver.bad_signatures == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert receiver.bad_signatures == 1 and "x" not in receiver.arrivals
    finally:
        receiver.stop()
