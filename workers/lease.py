"""A running job's lease in Redis: proof that a live worker holds it.

The worker sets `pdfjobs:lease:<job_id>` when it starts a job and refreshes it from a daemon
thread; a SIGKILLed worker stops refreshing, the key expires, and the reconciler re-queues the
job. The lease lives `ttl` seconds: short enough that a killed worker's job runs again quickly.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

LEASE_PREFIX = "pdfjobs:lease:"


def lease_key(job_id: str) -> str:
    """The Redis key of a job's lease."""
    return LEASE_PREFIX + job_id


@contextmanager
def job_lease(
    redis: Redis, job_id: str, ttl: int, *, tick: Callable[[], None] | None = None, tick_every: float = 0.2,
    also: Callable[[Pipeline], None] | None = None,
) -> Iterator[None]:
    """Hold the lease of `job_id` while the block runs (refreshed every ttl/3 seconds).

    `tick`, when given, runs on the same background thread every `tick_every` seconds (the job's
    progress uses it to publish a step that has lasted a while, without a thread of its own); `also`
    adds commands to the round trip that takes the lease.
    """
    stop = threading.Event()
    _set(redis, job_id, ttl, also)
    refresher = threading.Thread(target=_refresh, args=(redis, job_id, ttl, stop, tick, tick_every), daemon=True)
    refresher.start()
    try:
        yield
    finally:
        stop.set()
        try:
            redis.delete(lease_key(job_id))
        except RedisError:
            pass  # it expires on its own


def _set(redis: Redis, job_id: str, ttl: int, also: Callable[[Pipeline], None] | None = None) -> None:
    try:
        with redis.pipeline(transaction=False) as pipe:
            pipe.set(lease_key(job_id), os.getpid(), ex=ttl)
            if also is not None:
                also(pipe)
            pipe.execute()
    except RedisError as exc:
        log.warning("job=%s event=lease_not_set reason=%r", job_id, str(exc))


def _refresh(
    redis: Redis, job_id: str, ttl: int, stop: threading.Event, tick: Callable[[], None] | None, tick_every: float
) -> None:
    refresh_every = max(ttl / 3, 0.5)
    wait = min(refresh_every, tick_every) if tick is not None else refresh_every
    refreshed = time.monotonic()
    while not stop.wait(wait):
        if tick is not None:
            try:
                tick()
            except Exception as exc:  # noqa: BLE001 - a failed tick must not end the lease refreshes
                log.warning("job=%s event=lease_tick_failed reason=%r", job_id, str(exc))
        if time.monotonic() - refreshed >= refresh_every:
            refreshed = time.monotonic()
            _set(redis, job_id, ttl)


def leases_held(redis: Redis, job_ids: list[str]) -> dict[str, bool]:
    """Which of these jobs have a live lease (one pipelined round trip)."""
    with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.exists(lease_key(job_id))
        return {job_id: bool(found) for job_id, found in zip(job_ids, pipe.execute(), strict=True)}
