"""The retry policy, in one place: when each kind of failed work runs again, and when it stops.

- A job: RQ's `Retry` with JOB_RETRY_DELAYS (its length is the number of retries); a permanent
  error (`jobs.errors.is_permanent`) fails at once. A job orphaned by a dead worker counts as an
  attempt too: the reconciler re-queues it while attempts are left.
- A webhook: WEBHOOK_RETRY_DELAYS with +-10 % jitter, honouring the receiver's Retry-After up to
  an hour (which answers retry at all is `callbacks.delivery`'s classification).
- A remote storage call: a few quick tries with exponential backoff inside the job (Google Drive
  and Dropbox through `storage.retrying`, which waits at least a 429's Retry-After up to the cap;
  S3 through botocore's standard retry mode with the same number of tries); after that the job
  itself retries, uploading the kept PDF only.
- The API's Redis calls: one quick retry, so an outage never stalls a request.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

from redis.backoff import ExponentialBackoff
from redis.retry import Retry as RedisRetry
from rq import Retry
from rq.job import Job

from config import Settings
from storage.retrying import Backoff

MAX_RETRY_AFTER = 3600.0  # a webhook receiver's Retry-After is honoured up to one hour
STORAGE_BACKOFF = Backoff(attempts=5, base=1.0, cap=30.0)


class _Uniform(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


def job_retry(settings: Settings) -> Retry | None:
    """RQ's retry option for a PDF job (None when JOB_RETRY_DELAYS is empty)."""
    delays = list(settings.job_retry_delays)
    return Retry(max=len(delays), interval=delays) if delays else None


def job_attempts_allowed(settings: Settings) -> int:
    """How many times a job may start in all (first run + retries)."""
    return len(settings.job_retry_delays) + 1


def job_retry_delay(rq_job: Job | None) -> int:
    """Seconds until the next retry of a failing job, from RQ's own count of retries left (0 when none)."""
    if rq_job is None or not rq_job.retries_left:
        return 0
    return rq_job.get_retry_interval()


def webhook_delay(attempt_number: int, delays: Sequence[int], retry_after: float | None,
                  rng: _Uniform = random) -> float | None:
    """Seconds to wait after webhook attempt `attempt_number` (1-based) before the next, or None when done.

    Args:
        attempt_number: how many attempts have been made; delays[attempt_number - 1] is the base.
        delays: the schedule (WEBHOOK_RETRY_DELAYS); len(delays) + 1 attempts in all.
        retry_after: the receiver's Retry-After in seconds, honoured up to MAX_RETRY_AFTER.
        rng: anything with `uniform(a, b)`, for +-10 % jitter (the random module by default).
    """
    if attempt_number < 1:
        raise ValueError(f"attempt_number must be 1 or more, got {attempt_number!r}")
    if attempt_number > len(delays):
        return None
    delay = delays[attempt_number - 1] * rng.uniform(0.9, 1.1)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def api_redis_retry() -> RedisRetry:
    """redis-py's retry for API calls: one quick retry (its default backs off for seconds)."""
    return RedisRetry(ExponentialBackoff(cap=0.05, base=0.01), 1)
