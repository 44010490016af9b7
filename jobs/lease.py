"""A running job's lease in Redis: proof that a live worker holds it.

The worker sets `pdfjobs:lease:<job_id>` when it starts a job, and the process's lease keeper (one
daemon thread for the life of the process) refreshes it; a SIGKILLed worker stops refreshing, the
key expires, and the reconciler re-queues the job. The lease lives `ttl` seconds: short enough that
a killed worker's job runs again quickly.

The guarantee: a job whose worker died (SIGKILL, a lost machine) is noticed within STALE_JOB_GRACE,
where RQ alone would notice it after the job timeout + 60 s (tests/e2e/test_recovery.py). One keeper
thread for the process, not one per job: it sleeps on its own timer while a job runs, so taking and
giving back a lease wakes nothing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

LEASE_PREFIX = "pdfjobs:lease:"
MIN_REFRESH_EVERY = 0.5  # seconds; a tiny ttl must not turn the keeper into a busy loop


def lease_key(job_id: str) -> str:
    """The Redis key of a job's lease."""
    return LEASE_PREFIX + job_id


@contextmanager
def job_lease(
    redis: Redis, job_id: str, ttl: int, *, tick: Callable[[], None] | None = None, tick_every: float = 0.2,
    also: Callable[[Pipeline], None] | None = None,
) -> Iterator[HeldLease]:
    """Hold the lease of `job_id` while the block runs (refreshed every ttl/3 seconds).

    `tick`, when given, runs on the keeper thread every `tick_every` seconds (the job's progress uses
    it to publish a step that has lasted a while, without a thread of its own); `also` adds commands
    to the round trip that takes the lease. The block may give the lease back itself, on a pipeline
    it sends anyway (`HeldLease.give_back`: the job's end-of-job round trip); otherwise the lease is
    deleted when the block ends.
    """
    _set(redis, job_id, ttl, also)
    lease = _Lease(redis, job_id, ttl, tick, tick_every)
    _KEEPER.add(lease)
    held = HeldLease(lease)
    try:
        yield held
    finally:
        if not held.given_back:
            _KEEPER.remove(lease)  # after this the keeper never refreshes it again
            try:
                redis.delete(lease_key(job_id))
            except RedisError:
                pass  # it expires on its own


class HeldLease:
    """The lease a `job_lease` block holds."""

    def __init__(self, lease: _Lease) -> None:
        self._lease = lease
        self.given_back = False

    def give_back(self, pipe: Pipeline) -> None:
        """Stop refreshing the lease now and queue its delete on `pipe` (the job's end-of-job round
        trip). If that round trip fails, the lease expires on its own."""
        _KEEPER.remove(self._lease)  # before the delete runs: no refresh can bring the key back
        pipe.delete(lease_key(self._lease.job_id))
        self.given_back = True


def _set(redis: Redis, job_id: str, ttl: int, also: Callable[[Pipeline], None] | None = None) -> None:
    try:
        with redis.pipeline(transaction=False) as pipe:
            pipe.set(lease_key(job_id), os.getpid(), ex=ttl)
            if also is not None:
                also(pipe)
            pipe.execute()
    except RedisError as exc:
        log.warning("job=%s event=lease_not_set reason=%r", job_id, str(exc))


@dataclass(eq=False)
class _Lease:
    """One held lease, as the keeper sees it."""

    redis: Redis
    job_id: str
    ttl: int
    tick: Callable[[], None] | None
    tick_every: float
    refreshed: float = field(default_factory=time.monotonic)
    held: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)  # the keeper's refresh vs the release

    @property
    def refresh_every(self) -> float:
        """Seconds between two refreshes: a third of the ttl."""
        return max(self.ttl / 3, MIN_REFRESH_EVERY)

    @property
    def wake_every(self) -> float:
        """How often the keeper must look at this lease."""
        return min(self.refresh_every, self.tick_every) if self.tick is not None else self.refresh_every

    def keep(self, now: float) -> None:
        """Run the tick, and refresh the key when a third of the ttl has gone by; never after release."""
        with self.lock:
            if not self.held:
                return
            if self.tick is not None:
                try:
                    self.tick()
                except Exception as exc:  # noqa: BLE001 - a failed tick must not end the lease refreshes
                    log.warning("job=%s event=lease_tick_failed reason=%r", self.job_id, str(exc))
            if now - self.refreshed >= self.refresh_every:
                self.refreshed = now
                _set(self.redis, self.job_id, self.ttl)

    def release(self) -> None:
        """Stop keeping this lease (waits for a refresh or tick in progress)."""
        with self.lock:
            self.held = False


class _Keeper:
    """The process's lease thread: wakes every `wake_every` while leases are held, parks otherwise."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a forked child has the leases but not the thread

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._leases: set[_Lease] = set()
        self._wake = threading.Event()
        self._sleep: float | None = None  # what the thread sleeps now; None: parked (or not started)
        self._thread: threading.Thread | None = None

    def add(self, lease: _Lease) -> None:
        """Keep `lease` from now on; wakes the thread only if it is parked or sleeps too long for it."""
        with self._lock:
            self._leases.add(lease)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()
            elif self._sleep is None or lease.wake_every < self._sleep:
                self._wake.set()

    def remove(self, lease: _Lease) -> None:
        """Stop keeping `lease` (the thread notices at its next wake-up and parks if none is left)."""
        lease.release()
        with self._lock:
            self._leases.discard(lease)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._sleep = min((lease.wake_every for lease in self._leases), default=None)
            self._wake.wait(self._sleep)
            self._wake.clear()
            with self._lock:
                leases = list(self._leases)
            now = time.monotonic()
            for lease in leases:
                lease.keep(now)


_KEEPER = _Keeper()


def leases_held(redis: Redis, job_ids: list[str]) -> dict[str, bool]:
    """Which of these jobs have a live lease (one pipelined round trip)."""
    with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.exists(lease_key(job_id))
        return {job_id: bool(found) for job_id, found in zip(job_ids, pipe.execute(), strict=True)}
