"""Job leases: kept alive by one keeper thread per process, gone once released, never refreshed after."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
import redis as redis_lib

from jobs.lease import job_lease, lease_key, leases_held
from tests.workers.webhook_support import wait_until


def _keepers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "lease-keeper"]


def test_job_lease_is_refreshed_past_its_ttl_and_deleted_on_release(redis: redis_lib.Redis) -> None:
    with job_lease(redis, "lease-a", 1):  # refreshed every 0.5 s, the shortest refresh interval
        time.sleep(2.2)  # more than twice the ttl: it would have expired without refreshes
        assert leases_held(redis, ["lease-a"]) == {"lease-a": True}
        assert 0 < redis.pttl(lease_key("lease-a")) <= 1000
    assert leases_held(redis, ["lease-a"]) == {"lease-a": False}


def test_job_lease_runs_no_thread_per_job(redis: redis_lib.Redis) -> None:
    with job_lease(redis, "lease-warm", 30):
        pass
    threads_before = threading.active_count()
    for number in range(50):
        with job_lease(redis, f"lease-{number}", 30, tick=lambda: None, tick_every=0.05):
            pass
    assert len(_keepers()) == 1
    assert threading.active_count() == threads_before


def test_job_lease_ticks_while_held_and_never_after_release(redis: redis_lib.Redis) -> None:
    ticks: list[float] = []
    with job_lease(redis, "lease-tick", 30, tick=lambda: ticks.append(time.monotonic()), tick_every=0.05):
        assert wait_until(lambda: len(ticks) >= 3)
    released, count = time.monotonic(), len(ticks)
    time.sleep(0.3)  # six tick intervals
    assert len(ticks) == count
    assert all(tick <= released for tick in ticks)


def test_a_parked_keeper_wakes_for_a_new_lease(redis: redis_lib.Redis) -> None:
    with job_lease(redis, "lease-first", 30):
        pass
    time.sleep(0.3)  # nothing held: the keeper parks with no timeout
    ticks: list[float] = []
    taken = time.monotonic()
    with job_lease(redis, "lease-second", 30, tick=lambda: ticks.append(time.monotonic()), tick_every=0.05):
        assert wait_until(lambda: bool(ticks), timeout=2)
    assert ticks[0] - taken < 1.0


def test_a_failing_tick_does_not_stop_the_refreshes(redis: redis_lib.Redis, caplog: pytest.LogCaptureFixture) -> None:
    def tick() -> None:
        raise RuntimeError("meta write failed")

    with job_lease(redis, "lease-broken-tick", 1, tick=tick, tick_every=0.1):
        time.sleep(1.6)
        assert leases_held(redis, ["lease-broken-tick"]) == {"lease-broken-tick": True}
    assert "event=lease_tick_failed" in caplog.text


def _lease_in_child(url: str, result: multiprocessing.Queue) -> None:
    client = redis_lib.Redis.from_url(url)
    ticks: list[float] = []
    with job_lease(client, "lease-child", 1, tick=lambda: ticks.append(1.0), tick_every=0.05):
        time.sleep(1.5)
        held = leases_held(client, ["lease-child"])["lease-child"]
    result.put((held, len(ticks) > 0))


def test_a_forked_child_gets_its_own_keeper(redis: redis_lib.Redis, redis_server: str) -> None:
    with job_lease(redis, "lease-parent", 30):  # the parent's keeper runs when the child is forked
        context = multiprocessing.get_context("fork")
        result = context.Queue()
        child = context.Process(target=_lease_in_child, args=(redis_server, result))
        child.start()
        held, ticked = result.get(timeout=10)
        child.join(timeout=10)
    assert (held, ticked) == (True, True)


def test_lease_given_back_goes_in_the_callers_round_trip_and_is_never_refreshed_again(redis: redis_lib.Redis) -> None:
    key = lease_key("lease-back")
    with job_lease(redis, "lease-back", 1) as lease:  # refreshed every 0.5 s
        with redis.pipeline(transaction=False) as pipe:
            lease.give_back(pipe)
            assert redis.exists(key)  # queued, not sent
            pipe.execute()
        assert not redis.exists(key)
        redis.set(key, "someone-else", ex=30)
        time.sleep(0.8)  # past a refresh: the keeper leaves the key alone
        assert redis.get(key) == b"someone-else"
    assert redis.get(key) == b"someone-else"  # the block's end does not delete it a second time


def test_lease_given_back_in_a_round_trip_that_never_ran_expires_on_its_own(redis: redis_lib.Redis) -> None:
    with job_lease(redis, "lease-lost", 1) as lease:
        with redis.pipeline(transaction=False) as pipe:
            lease.give_back(pipe)  # Redis fails before the pipeline runs
        assert wait_until(lambda: not redis.exists(lease_key("lease-lost")), timeout=3)  # ttl 1 s, not refreshed
