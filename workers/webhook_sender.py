"""The webhook sender program: `python -m workers.webhook_sender` (supervisor program `webhook_worker`).

The relay hands a delivery over by pushing its id onto the Redis list `WEBHOOK_READY`. A fetch
thread takes ids (BLPOP, then LPOP of as many more as there are free threads; while ids come faster
than one per LINGER_SECONDS and PDF jobs are waiting in RQ's queues, it waits that long after the
first and takes what came meanwhile), the main thread claims them in SQL in one transaction
(claim-once per attempt, `store.outbox`; an entry "<id>:<n>" from the PDF worker names attempt n,
claimed when the row was written: it is read back, and renewed only when too little of its lease is
left for a whole attempt), `SenderPool` threads POST them concurrently on keep-alive sessions, and
the main thread records what came back, one transaction for all the results at hand, with the
delivery's next state. An attempt still running at its deadline (`attempt_timeout`) is recorded as a
timed-out retry and its thread replaced, so a hanging or slow-drip receiver never holds the others.
SIGTERM: no new ids are taken, the attempts in flight finish and are recorded, then the process
exits. SIGKILL: the claims in flight are re-handed by the relay after the lease. The next attempt is
never pushed from here: its due time is stored and the relay hands it over.

Why not one stock RQ job per attempt: a SimpleWorker runs one job at a time, so each slow receiver
would hold a whole process, and that variant measured 10 % less end-to-end throughput (the
stock-vs-custom table in bench/README.md). tests/workers/test_sender_concurrency.py shows the guarantee.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from callbacks import DELIVERED, RETRY, AttemptResult
from config import Settings
from config.heap import freeze_startup_objects
from config.logging import setup_logging
from config.netguard import install_loopback_guard
from jobs.queues import PDF_QUEUES, WEBHOOK_READY, ReadyEntry, rq_queue_key
from jobs.retry_policy import webhook_delay
from jobs.runtime import Runtime, build_runtime, set_runtime
from jobs.webhook_relay import attempt_timeout, lease_seconds
from store import outbox
from store.clients import find_clients_by_name
from store.models import DELIVERY_DELIVERED, DELIVERY_FAILED, DELIVERY_PENDING, utcnow
from workers.sender_pool import SenderPool, Task, leave_signals_to_main_thread

log = logging.getLogger(__name__)

BLOCK_SECONDS = 1
_FETCH_DONE = object()
# Under load, the fetch thread waits this long after the first entry of a batch and takes what came
# meanwhile with it (see ArrivalRate). A batch costs the sender about the same besides its POSTs
# whatever its size: three threads woken, a read and a write transaction. Webhooks then leave up to
# this much later under load; one that comes alone leaves at once, and so do the
# last ones of a burst (no PDF job waiting in RQ's queues: at most one per worker is still coming).
LINGER_SECONDS = 0.03
# RQ's lists of the PDF queues, read in the fetch's round trip: while one holds a job, more webhooks
# are on their way.
_PDF_QUEUE_KEYS = tuple(rq_queue_key(name) for name in PDF_QUEUES)


class WebhookSender:
    """Takes delivery ids from Redis, claims them, sends them on a thread pool and records the attempts."""

    def __init__(self, rt: Runtime, *, concurrency: int | None = None, deadline: float | None = None,
                 linger: float = LINGER_SECONDS) -> None:
        self.rt = rt
        self.concurrency = concurrency or rt.settings.webhook_concurrency
        self.deadline = deadline or attempt_timeout(rt.settings)
        self.arrivals = ArrivalRate(linger)
        self.jobs_waiting = 0  # PDF jobs in RQ's queues at the last blocking fetch
        self.stopping = threading.Event()
        self._events: queue.SimpleQueue = queue.SimpleQueue()  # id batches, finished Tasks, _FETCH_DONE
        self._slots = threading.Condition()
        self._free = self.concurrency
        self._inflight: set[Task] = set()
        self.recorded = 0

    def stop(self) -> None:
        """Take no more ids; `run` returns once the attempts in flight are recorded (SIGTERM)."""
        self.stopping.set()
        with self._slots:
            self._slots.notify_all()

    def run(self, *, until_empty: bool = False) -> int:
        """Send until stopped (or, with until_empty, until the list is empty); returns attempts recorded."""
        pool = SenderPool(self.rt.settings, self.concurrency, self._events)
        fetcher = threading.Thread(target=self._fetch, args=(until_empty,), name="webhook-fetch", daemon=True)
        fetcher.start()
        fetching = True
        while fetching or self._inflight:
            events = self._next_events()
            fetching = fetching and _FETCH_DONE not in events
            entries = [event for event in events if isinstance(event, ReadyEntry)]
            if entries:
                self._start(pool, entries)
            self._record([e for e in events if isinstance(e, Task)] + self._expired(pool))
            if pool.stuck > 4 * self.concurrency and not self.stopping.is_set():
                log.error("event=sender_stopping reason=stuck_threads count=%s", pool.stuck)
                self.stop()  # supervisor starts a fresh process
        pool.close()
        return self.recorded

    def _next_events(self) -> list[object]:
        """Wait for the next events (until the nearest deadline at most), then take all that are there."""
        wait = min((task.deadline for task in self._inflight), default=time.monotonic() + 1) - time.monotonic()
        try:
            events = [self._events.get(timeout=max(wait, 0.001))]
        except queue.Empty:
            return []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return [i for e in events for i in (e if isinstance(e, list) else [e])]

    def _fetch(self, until_empty: bool) -> None:
        """Move ids from Redis to the main thread, never more than there are free threads."""
        leave_signals_to_main_thread()
        try:
            while not self.stopping.is_set():
                free = self._reserve()
                if free == 0:
                    continue
                entries = self._take(free, block=not until_empty)
                if entries and not until_empty:
                    entries += self._lingered(free - len(entries))
                    self.arrivals.taken(len(entries))
                if entries and self.stopping.is_set():  # taken while SIGTERM came in: not ours any more
                    self._put_back(entries)
                    entries = []
                self._release(free - len(entries))
                if entries:
                    self._events.put(entries)
                elif until_empty:
                    return
        finally:
            self._events.put(_FETCH_DONE)

    def _take(self, count: int, *, block: bool) -> list[ReadyEntry]:
        """Up to `count` entries: with block, wait up to BLOCK_SECONDS for the first (BLPOP), then LPOP the rest.

        BLPOP and LPOP go in one pipeline, one round trip: Redis runs the LPOP as soon as the BLPOP
        returns (a blocked client's next command waits in its buffer). After a BLPOP timeout the LPOP
        finds the list empty as well, short of an id pushed in between, which is taken all the same.
        The lengths of the PDF queues come back in the same round trip (`jobs_waiting`).
        """
        redis = self.rt.redis
        try:
            if not block:
                raw = redis.lpop(WEBHOOK_READY, count) or []
            else:
                with redis.pipeline(transaction=False) as pipe:
                    pipe.blpop([WEBHOOK_READY], timeout=BLOCK_SECONDS)
                    if count > 1:
                        pipe.lpop(WEBHOOK_READY, count - 1)
                    for key in _PDF_QUEUE_KEYS:
                        pipe.llen(key)
                    replies = pipe.execute()
                first, rest = replies[0], (replies[1] if count > 1 else None)
                self.jobs_waiting = sum(replies[-len(_PDF_QUEUE_KEYS):])
                raw = ([first[1]] if first else []) + (rest or [])
        except RedisError as exc:
            log.warning("event=sender_redis_unavailable reason=%r", str(exc))
            self.stopping.wait(1)
            return []
        return _entries(raw)

    def _lingered(self, room: int) -> list[ReadyEntry]:
        """When webhooks are coming fast and PDF jobs are waiting, the entries pushed within the next
        linger seconds (up to `room`)."""
        if room <= 0 or not self.arrivals.busy() or not self.jobs_waiting or self.stopping.wait(self.arrivals.linger):
            return []
        return self._take(room, block=False)

    def _put_back(self, entries: list[ReadyEntry], *, front: bool = True) -> None:
        raw = [entry.encode() for entry in entries]
        try:
            if front:
                self.rt.redis.lpush(WEBHOOK_READY, *reversed(raw))
            else:
                self.rt.redis.rpush(WEBHOOK_READY, *raw)
        except RedisError as exc:  # handed in SQL: the relay re-hands them after the lease
            log.warning("event=sender_put_back_failed deliveries=%s reason=%r", len(raw), str(exc))

    def _reserve(self) -> int:
        """Wait for a free thread, then reserve every free one; 0 when stopping."""
        with self._slots:
            while self._free == 0 and not self.stopping.is_set():
                self._slots.wait(BLOCK_SECONDS)
            free, self._free = self._free, 0
        if self.stopping.is_set():
            self._release(free)
            return 0
        return free

    def _release(self, count: int) -> None:
        if count:
            with self._slots:
                self._free += count
                self._slots.notify_all()

    def _start(self, pool: SenderPool, entries: list[ReadyEntry]) -> None:
        """Take over the claims made with the rows, claim the rest in one transaction, hand all to the pool."""
        now = utcnow()
        try:
            claims = self._claims(entries, now)
            clients = find_clients_by_name(self.rt.session, self.rt.settings.api_clients,
                                           {claim.client_name or "" for claim in claims},
                                           keys=self.rt.settings.secrets_encryption_key)
        except SQLAlchemyError as exc:  # try them again after the others, after a pause
            log.warning("event=claim_failed deliveries=%s reason=%r", len(entries), str(exc))
            self._put_back(entries, front=False)
            self._release(len(entries))
            self.stopping.wait(0.5)
            return
        self._release(len(entries) - len(claims))
        if len(claims) < len(entries):
            log.info("event=webhook_skipped reason=not_due_or_taken deliveries=%s", len(entries) - len(claims))
        deadline = time.monotonic() + self.deadline
        for claim in claims:
            task = Task(claim, clients.get(claim.client_name or ""), now, deadline)
            self._inflight.add(task)
            pool.submit(task)

    def _claims(self, entries: list[ReadyEntry], now: datetime) -> list[outbox.Claim]:
        """Claims for the entries: "<id>:<n>" takes over the claim made with the row, "<id>" claims anew."""
        lease = lease_seconds(self.rt.settings)
        held = {entry.delivery_id: entry.claimed for entry in entries if entry.claimed is not None}
        plain = [entry.delivery_id for entry in entries if entry.claimed is None]
        claims = outbox.held_claims(self.rt.engine, held, now, self.deadline, lease) if held else []
        if plain:  # handed over again by the relay: rare, so only these pay for a Session
            with self.rt.session() as session:
                claims += outbox.claim_attempts(session, plain, now, lease)
        return claims

    def _expired(self, pool: SenderPool) -> list[Task]:
        """Tasks past their deadline, given up and marked as timed-out retries."""
        now = time.monotonic()
        expired = []
        for task in self._inflight:
            if task.deadline <= now and pool.give_up(task):
                error = f"no complete answer within {self.deadline:g} s (attempt deadline): stopped waiting"
                task.result = AttemptResult(RETRY, None, round(self.deadline * 1000), error=error)
                expired.append(task)
        return expired

    def _record(self, tasks: list[Task]) -> None:
        """Store the attempts and the deliveries' next states in one transaction."""
        if not tasks:
            return
        now = utcnow()
        try:
            with self.rt.engine.begin() as connection:
                entries = [(task.claim, _attempt_record(self.rt.settings, connection, task, now)) for task in tasks]
                kept = outbox.record_attempts(connection, entries)
        except SQLAlchemyError as exc:  # the claims stay "sending": the relay re-hands them after the lease
            log.warning("event=record_failed attempts=%s reason=%r", len(tasks), str(exc))
            entries, kept = [], []
        finally:
            self._inflight.difference_update(tasks)
            self._release(len(tasks))
        for (claim, record), was_kept in zip(entries, kept, strict=True):
            _log_recorded(claim, record, was_kept)
        self.recorded += len(kept)


class ArrivalRate:
    """Whether entries come fast enough that a batch gains by waiting `linger` seconds for more.

    Keeps a moving average of the time between entries (the gap since the previous batch divided by
    the entries taken, each gap counted up to MAX_GAP): busy while it is at most `linger`, so that an
    entry is expected within the wait. One quiet second ends it; steady load starts it after a dozen
    batches or so (a fraction of a second).
    """

    MAX_GAP = 1.0
    WEIGHT = 0.3  # of the newest gap in the average

    def __init__(self, linger: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.linger = linger
        self._clock = clock
        self._gap = self.MAX_GAP
        self._last: float | None = None

    def busy(self) -> bool:
        """Whether the average gap between entries is at most `linger`."""
        return self._gap <= self.linger

    def taken(self, count: int) -> None:
        """Count a batch of `count` entries taken now."""
        now = self._clock()
        if self._last is not None and count > 0:
            gap = min(now - self._last, self.MAX_GAP) / count
            self._gap = self.WEIGHT * gap + (1 - self.WEIGHT) * self._gap
        self._last = now


def _entries(raw: list[bytes]) -> list[ReadyEntry]:
    entries = []
    for value in raw:
        try:
            entries.append(ReadyEntry.decode(value))
        except ValueError:
            log.warning("event=bad_delivery_id value=%r", value[:40])
    return entries


def _attempt_record(
    settings: Settings, connection: Connection, task: Task, now: datetime
) -> outbox.AttemptRecord:
    result = task.result
    assert result is not None
    status, next_at, error = next_state(settings, connection, task.claim, result, now)
    return outbox.AttemptRecord(
        started_at=task.started_at,
        outcome=result.outcome,
        status_code=result.status_code,
        duration_ms=result.duration_ms,
        error=error,
        response_excerpt=result.response_excerpt,
        new_status=status,
        next_attempt_at=next_at,
        delivered_at=now if status == DELIVERY_DELIVERED else None,
    )


def next_state(
    settings: Settings, connection: Connection, claim: outbox.Claim, result: AttemptResult, now: datetime
) -> tuple[str, datetime | None, str | None]:
    """(status, next_attempt_at, last_error) after an attempt, following WEBHOOK_RETRY_DELAYS."""
    if result.outcome == DELIVERED:
        return DELIVERY_DELIVERED, None, result.error
    if result.outcome != RETRY:
        return DELIVERY_FAILED, None, result.error
    round_number = claim.attempt_number - outbox.retry_round_base(connection, claim.delivery_id)
    delay = webhook_delay(max(round_number, 1), settings.webhook_retry_delays, result.retry_after)
    if delay is None:
        return DELIVERY_FAILED, None, f"gave up after {round_number} attempts; last: {result.error}"
    return DELIVERY_PENDING, now + timedelta(seconds=delay), result.error


def _log_recorded(claim: outbox.Claim, record: outbox.AttemptRecord, kept: bool) -> None:
    next_at = record.next_attempt_at
    log.info(
        "delivery=%s job=%s webhook_id=%s attempt=%s outcome=%s code=%s ms=%s status=%s next_at=%s error=%r",
        claim.delivery_id, claim.job_id, claim.webhook_id, claim.attempt_number, record.outcome,
        record.status_code, record.duration_ms, record.new_status,
        next_at.isoformat(timespec="seconds") if next_at else None, record.error,
    )
    if not kept:
        log.warning("delivery=%s event=claim_lost attempt=%s", claim.delivery_id, claim.attempt_number)


def drain(rt: Runtime, *, concurrency: int | None = None, deadline: float | None = None) -> int:
    """Send every delivery now on the list, in this process, and record it; returns attempts recorded."""
    return WebhookSender(rt, concurrency=concurrency, deadline=deadline).run(until_empty=True)


def main() -> int:
    """Run the sender until SIGTERM/SIGINT."""
    settings = Settings.from_env()
    setup_logging(settings.log_level, process="webhook_sender")
    if settings.loopback_only:
        install_loopback_guard()
    rt = build_runtime(settings, socket_timeout=BLOCK_SECONDS + 5)
    set_runtime(rt)
    sender = WebhookSender(rt)
    signal.signal(signal.SIGTERM, lambda signum, frame: sender.stop())
    signal.signal(signal.SIGINT, lambda signum, frame: sender.stop())
    frozen = freeze_startup_objects()
    log.info("event=sender_start concurrency=%s deadline=%s frozen_objects=%s", sender.concurrency, sender.deadline,
             frozen)
    recorded = sender.run()
    log.info("event=sender_stop attempts=%s", recorded)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
