"""The retry policy: webhook backoff, job retries from settings, storage backoff through tenacity."""

from __future__ import annotations

import pytest

from config import Settings
from jobs.retry_policy import job_attempts_allowed, job_retry, webhook_delay
from storage.base import StorageError, StoragePermanentError
from storage.retrying import Backoff, call_with_retries


class _Fixed:
    def __init__(self, factor: float) -> None:
        self.factor = factor

    def uniform(self, a: float, b: float) -> float:
        return a if self.factor < 1 else b


def test_webhook_delay_jitter_stays_within_ten_percent() -> None:
    delays = [10, 60, 300]
    assert webhook_delay(1, delays, None, _Fixed(0.9)) == pytest.approx(9.0)
    assert webhook_delay(2, delays, None, _Fixed(1.1)) == pytest.approx(66.0)
    for _ in range(200):
        assert 270 <= (webhook_delay(3, delays, None) or 0) <= 330


def test_webhook_delay_none_when_schedule_exhausted() -> None:
    assert webhook_delay(4, [10, 60, 300], None) is None
    assert webhook_delay(1, [], None) is None
    with pytest.raises(ValueError):
        webhook_delay(0, [10], None)


def test_webhook_delay_honours_retry_after_up_to_an_hour() -> None:
    assert webhook_delay(1, [5], 7.0, _Fixed(1.1)) == pytest.approx(7.0)
    assert webhook_delay(1, [60], 7.0, _Fixed(0.9)) == pytest.approx(54.0)
    assert webhook_delay(1, [5], 86_400.0, _Fixed(1.1)) == pytest.approx(3600.0)


def test_job_retry_follows_job_retry_delays() -> None:
    retry = job_retry(Settings(job_retry_delays=(1, 2, 4)))
    assert retry is not None and retry.max == 3 and retry.intervals == [1, 2, 4]
    assert job_retry(Settings(job_retry_delays=())) is None
    assert job_attempts_allowed(Settings(job_retry_delays=(1, 2, 4))) == 4


class _Flaky:
    """Fails with `errors` in turn, then answers "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _classify(exc: BaseException) -> Exception | None:
    if isinstance(exc, TimeoutError):
        return StorageError(f"timed out: {exc}")
    if isinstance(exc, PermissionError):
        return StoragePermanentError(f"denied: {exc}")
    return None


def test_storage_call_retries_transient_errors_with_doubling_waits() -> None:
    sleeps: list[float] = []
    call = _Flaky(TimeoutError("a"), TimeoutError("b"))
    answer = call_with_retries(call, what="put", classify=_classify, backoff=Backoff(5, 0.5, 30), sleep=sleeps.append)
    assert answer == "ok"
    assert call.calls == 3 and sleeps == [0.5, 1.0]


def test_storage_call_gives_up_after_its_attempts_with_our_error() -> None:
    sleeps: list[float] = []
    call = _Flaky(*(TimeoutError(str(n)) for n in range(5)))
    with pytest.raises(StorageError, match="timed out: 2") as raised:
        call_with_retries(call, what="put", classify=_classify, backoff=Backoff(3, 1, 1.5), sleep=sleeps.append)
    assert call.calls == 3 and sleeps == [1, 1.5]
    assert isinstance(raised.value.__cause__, TimeoutError)


def test_storage_call_never_retries_permanent_or_unknown_errors() -> None:
    call = _Flaky(PermissionError("no"))
    with pytest.raises(StoragePermanentError):
        call_with_retries(call, what="put", classify=_classify, backoff=Backoff(), sleep=lambda _: None)
    assert call.calls == 1
    unknown = _Flaky(KeyError("x"))
    with pytest.raises(KeyError):
        call_with_retries(unknown, what="put", classify=_classify, backoff=Backoff(), sleep=lambda _: None)
    assert unknown.calls == 1
