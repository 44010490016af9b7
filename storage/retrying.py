"""Retries of a remote storage call: transient failures again with exponential backoff (tenacity).

The numbers come from the retry policy (`jobs.retry_policy.STORAGE_BACKOFF`); each backend says
which of its errors are transient by mapping them to `StorageError` (retry) or
`StoragePermanentError` (give up at once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from storage.base import StorageError, StoragePermanentError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Tries per call, and the wait before the 2nd try, doubling up to `cap` seconds."""

    attempts: int = 5
    base: float = 1.0
    cap: float = 30.0


def call_with_retries(call: Callable[[], T], *, what: str, classify: Callable[[BaseException], Exception | None],
                      backoff: Backoff, sleep: Callable[[float], None] = time.sleep,
                      retry_after: Callable[[BaseException], float | None] | None = None) -> T:
    """Run `call`; retry what `classify` maps to a transient StorageError; raise the mapped error at the end.

    `classify` returns our error for an exception it knows (StorageError or StoragePermanentError),
    or None for one it does not (raised as it is, never retried). `retry_after` gives the wait the
    server asked for (a 429's Retry-After), if any: the wait is then at least that, up to `cap`.
    """

    def transient(exc: BaseException) -> bool:
        error = classify(exc)
        return isinstance(error, StorageError) and not isinstance(error, StoragePermanentError)

    def logged(state: RetryCallState) -> None:
        log.warning("event=storage_call_failed what=%r attempt=%d/%d retry_in=%.2fs error=%s", what,
                    state.attempt_number, backoff.attempts, state.upcoming_sleep, state.outcome.exception())

    exponential = wait_exponential(multiplier=backoff.base, exp_base=2, min=backoff.base, max=backoff.cap)

    def wait(state: RetryCallState) -> float:
        asked = retry_after(state.outcome.exception()) if retry_after and state.outcome else None
        return max(exponential(state), min(asked or 0.0, backoff.cap))

    retrying = Retrying(
        stop=stop_after_attempt(max(1, backoff.attempts)), wait=wait,
        retry=retry_if_exception(transient), sleep=sleep, before_sleep=logged, reraise=True,
    )
    try:
        return retrying(call)
    except Exception as exc:
        error = classify(exc)
        if error is None:
            raise
        _raise(error, exc)


def _raise(error: Exception, cause: BaseException) -> NoReturn:
    raise error from cause


__all__ = ["Backoff", "call_with_retries"]
