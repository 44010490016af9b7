"""The scheduler's leader lease on a real Redis: one holder; release, expiry or a lost key hand it over."""

from __future__ import annotations

import socket
import subprocess
import time

from jobs.leader import LEADER_KEY, LeaderLease, holder_is_dead


def test_only_one_of_two_schedulers_holds_the_lease(redis) -> None:
    first, second = LeaderLease(redis, 5, name="host-a.1.aaaa"), LeaderLease(redis, 5, name="host-b.2.bbbb")

    assert first.hold() and not second.hold()
    assert first.hold() and not second.hold()  # renewing keeps it
    assert redis.get(LEADER_KEY) == b"host-a.1.aaaa" and 4000 < redis.pttl(LEADER_KEY) <= 5000


def test_released_lease_is_taken_by_the_standby_at_its_next_try(redis) -> None:
    first, second = LeaderLease(redis, 30, name="host-a.1.aaaa"), LeaderLease(redis, 30, name="host-b.2.bbbb")
    first.hold()
    second.hold()

    assert first.release() and not first.is_leader
    assert second.hold() and second.current_holder() == "host-b.2.bbbb"
    assert not first.release()  # no longer held: nothing to delete, the new holder's key stays
    assert redis.get(LEADER_KEY) == b"host-b.2.bbbb"


def test_lease_of_a_dead_holder_expires_and_the_standby_takes_it(redis) -> None:
    dead, standby = LeaderLease(redis, 0.3, name="host-a.1.aaaa"), LeaderLease(redis, 0.3, name="host-b.2.bbbb")
    assert dead.hold() and not standby.hold()

    time.sleep(0.4)  # the holder stopped renewing (its host died): Redis expires the key

    assert standby.hold()
    assert not dead.is_leader  # its own clock says its last renewal is older than the ttl


def test_holder_whose_key_was_lost_and_taken_steps_down(redis) -> None:
    holder, other = LeaderLease(redis, 30, name="host-a.1.aaaa"), LeaderLease(redis, 30, name="host-b.2.bbbb")
    holder.hold()
    redis.delete(LEADER_KEY)  # as after a Sentinel failover that lost the last writes
    assert other.hold()

    assert not holder.hold()
    assert redis.get(LEADER_KEY) == b"host-b.2.bbbb"  # the step-down never touched the new holder's key


def test_unreachable_redis_ends_leadership_after_the_ttl(settings, redis) -> None:
    from tests.conftest import unreachable_redis

    lease = LeaderLease(redis, 0.3, name="host-a.1.aaaa")
    assert lease.hold()
    lease.redis = unreachable_redis(settings)

    time.sleep(0.35)

    assert not lease.hold()


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_restarted_scheduler_replaces_a_killed_holder_on_this_host_at_once(redis) -> None:
    redis.set(LEADER_KEY, f"other-host.{dead_pid()}.cafe0000", px=60_000)
    assert not LeaderLease(redis, 60).hold()  # a pid of another host tells nothing: the ttl is waited out

    redis.set(LEADER_KEY, f"{socket.gethostname()}.{dead_pid()}.deadbeef", px=60_000)
    restarted = LeaderLease(redis, 60)
    assert restarted.hold() and restarted.current_holder() == restarted.name


def test_holder_is_dead_only_for_dead_local_processes() -> None:
    host = socket.gethostname()
    assert holder_is_dead(f"{host}.{dead_pid()}.abcd1234")
    assert not holder_is_dead(f"{host}.1.abcd1234")  # pid 1 is alive
    assert not holder_is_dead(f"other-host.{dead_pid()}.abcd1234")
    assert not holder_is_dead("0123456789abcdef")


def test_holder_names_carry_host_name_so_hosts_sharing_a_machine_name_stay_apart(redis) -> None:
    redis.set(LEADER_KEY, f"host-1.{dead_pid()}.deadbeef", px=60_000)

    assert not LeaderLease(redis, 60, host="host-2").hold()  # host-1's pids are not host-2's to check
    taker = LeaderLease(redis, 60, host="host-1")
    assert taker.hold() and taker.name.startswith("host-1.")
