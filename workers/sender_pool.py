"""The webhook sender's threads: each keeps one keep-alive HTTP session and makes one attempt at a time.

A thread signs the stored body with the client's secret and a fresh timestamp and POSTs it through
`callbacks.deliver` on its own `callback_session` (the callback URL policy checks and pins the
address on every request; only the connections are reused). HTTP trouble is never an exception
here: it is an attempt with an outcome. A task whose thread is still busy at its deadline is given
up (`give_up`): a fresh thread takes the stuck one's place, and the stuck one retires when its
request returns, dropping the late result.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from callbacks import GIVE_UP, RETRY, AttemptResult, deliver, signature_headers
from callbacks.transport import CallbackSession, callback_session
from config import ClientConfig, Settings
from store.outbox import Claim

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Task:
    """One claimed attempt on its way through the pool."""

    claim: Claim
    client: ClientConfig | None
    started_at: datetime
    deadline: float  # time.monotonic() by which the attempt must have finished
    result: AttemptResult | None = None
    abandoned: bool = False


def attempt(settings: Settings, claim: Claim, client: ClientConfig | None, session: CallbackSession) -> AttemptResult:
    """Sign and POST the delivery's body once; problems come back as an AttemptResult."""
    if client is None:
        return AttemptResult(GIVE_UP, None, 0, error=f"client {claim.client_name!r} no longer exists: cannot sign")
    body = claim.body.encode("utf-8")
    headers: dict[str, str] = {}
    if client.callback_auth_header:
        name, value = client.callback_auth_header
        headers[name] = value
    try:
        headers.update(signature_headers(client.signing_secrets, claim.webhook_id, int(time.time()), body))
    except ValueError as exc:
        return AttemptResult(GIVE_UP, None, 0, error=f"client {client.name!r} webhook secret is unusable: {exc}")
    return deliver(
        claim.url, body, headers, timeout=settings.webhook_timeout, allowed_hosts=settings.callback_allowed_hosts,
        session=session,
    )


class SenderPool:
    """`size` threads sending tasks; finished tasks (with their result) are put on `done`."""

    def __init__(self, settings: Settings, size: int, done: queue.SimpleQueue) -> None:
        self._settings = settings
        self._size = size
        self._done = done
        self._tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._active: set[threading.Thread] = set()
        self._holders: dict[Task, threading.Thread] = {}
        self.stuck = 0  # given-up threads whose request has not returned yet
        for _ in range(size):
            self._start_thread()

    def submit(self, task: Task) -> None:
        """Queue a task; a free thread takes it at once when the caller keeps to `size` in flight."""
        self._tasks.put(task)

    def give_up(self, task: Task) -> bool:
        """Drop a task still running past its deadline; False when its result has just come in."""
        with self._lock:
            if task.result is not None:
                return False
            task.abandoned = True
            holder = self._holders.pop(task, None)
            if holder is None:  # not started yet: no thread takes it now
                return True
            self._active.discard(holder)
            self.stuck += 1
        self._start_thread()
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop the threads once their queued tasks are done (stuck ones are left to the process exit)."""
        with self._lock:
            threads = list(self._active)
        for _ in range(self._size):
            self._tasks.put(None)
        for thread in threads:
            thread.join(timeout)

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._serve, name="webhook-send", daemon=True)
        with self._lock:
            self._active.add(thread)
        thread.start()

    def _serve(self) -> None:
        leave_signals_to_main_thread()
        settings = self._settings
        me = threading.current_thread()
        with callback_session(settings.webhook_timeout, settings.callback_allowed_hosts) as session:
            while (task := self._tasks.get()) is not None:
                with self._lock:
                    if task.abandoned:
                        continue
                    self._holders[task] = me
                result = _attempt_safely(settings, task, session)
                with self._lock:
                    self._holders.pop(task, None)
                    if task.abandoned:  # replaced while stuck: the sender has recorded a timeout
                        self.stuck -= 1
                        log.info("delivery=%s event=late_result_dropped outcome=%s", task.claim.delivery_id,
                                 result.outcome)
                        return
                    task.result = result
                self._done.put(task)


def leave_signals_to_main_thread() -> None:
    """Block SIGTERM/SIGINT in this helper thread, so the kernel delivers them to the main thread.

    Python runs handlers in the main thread only; a signal that lands on another thread would wait
    until the main thread next wakes up.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})


def _attempt_safely(settings: Settings, task: Task, session: CallbackSession) -> AttemptResult:
    try:
        return attempt(settings, task.claim, task.client, session)
    except Exception as exc:  # a bug: count the attempt (so retries stay bounded) and go on
        log.exception("delivery=%s job=%s event=webhook_attempt_crashed", task.claim.delivery_id, task.claim.job_id)
        return AttemptResult(RETRY, None, 0, error=f"internal error ({type(exc).__name__})")
