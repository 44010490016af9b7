"""A running job's lease in Redis: proof that a live worker holds it.

The worker sets `pdfjobs:lease:<job_id>` when it starts a job and refreshes it from a daemon
thread; a SIGKILLed worker stops refreshing, the key expires, and the reconciler re-queues the
job. The lease lives `ttl` seconds: short enough that a killed worker's job runs again quickly.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

LEASE_PREFIX = "pdfjobs:lease:"


def lease_key(job_id: str) -> str:
    """The Redis key of a job's lease."""
    return LEASE_PREFIX + job_id


@contextmanager
def job_lease(redis: Redis, job_id: str, ttl: int) -> Iterator[None]:
    """Hold the lease of `job_id` while the block runs (refreshed every ttl/3 seconds)."""
    stop = threading.Event()
    _set(redis, job_id, ttl)
    refresher = threading.Thread(target=_refresh, args=(redis, job_id, ttl, stop), daemon=True)
    refresher.start()
    try:
        yield
    finally:
        stop.set()
        try:
            redis.delete(lease_key(job_id))
        except RedisError:
            pass  # it expires on its own


def _set(redis: Redis, job_id: str, ttl: int) -> None:
    try:
        redis.set(lease_key(job_id), os.getpid(), ex=ttl)
    except RedisError as exc:
        log.warning("job=%s event=lease_not_set reason=%r", job_id, str(exc))


def _refresh(redis: Redis, job_id: str, ttl: int, stop: threading.Event) -> None:
    while not stop.wait(max(ttl / 3, 0.5)):
        _set(redis, job_id, ttl)


def leases_held(redis: Redis, job_ids: list[str]) -> dict[str, bool]:
    """Which of these jobs have a live lease (one pipelined round trip)."""
    with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.exists(lease_key(job_id))
        return {job_id: bool(found) for job_id, found in zip(job_ids, pipe.execute(), strict=True)}
