"""Two hosts run schedulers: exactly one acts; SIGKILLing the leader's whole host hands over within the lease."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from rq.scheduler import RQScheduler

from jobs.leader import LEADER_KEY
from ops.harness import RunningService
from tests.e2e.conftest import E2E_ENV

LEASE_SECONDS = 3


def holder(service: RunningService) -> str | None:
    value = service.redis().get(LEADER_KEY)
    return value.decode() if value is not None else None


def wait_for_holder(service: RunningService, pids: list[int], timeout: float = 60) -> str:
    """The leader lease's holder once it is a scheduler with one of `pids` (names are host.pid.random)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        name = holder(service)
        if name and int(name.split(".")[-2]) in pids:
            return name
        time.sleep(0.05)
    raise AssertionError(f"no scheduler of pids {pids} took the lease within {timeout} s (holder: {holder(service)})")


def test_killing_the_leaders_host_hands_the_scheduler_over_within_the_lease(tmp_path: Path, redis_server: str,
                                                                              redis) -> None:
    env = E2E_ENV | {"REDIS_URL": redis_server, "DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}",
                     "SCHEDULER_LEASE_SECONDS": str(LEASE_SECONDS), "WORKERS": "1"}
    # Host names of their own, as on separate machines: the standby cannot see the leader's pids and must
    # wait for its lease to expire.
    first = RunningService(tmp_path / "host-1", env | {"ROLES": "api,scheduler", "HOST_NAME": "host-1"}).start()
    second = None
    try:
        leader = wait_for_holder(first, first.program_pids("scheduler"))
        second = RunningService(tmp_path / "host-2", env | {"ROLES": "scheduler", "HOST_NAME": "host-2"}).start()
        standby_pids = second.program_pids("scheduler")
        time.sleep(LEASE_SECONDS)  # the standby tried a few times meanwhile
        assert holder(first) == leader  # the standby never took it while the leader lived
        locks = {redis.get(RQScheduler.get_locking_key(name)) for name in ("high", "normal", "low")}
        assert locks == {leader.encode()}  # only the leader schedules retries

        killed_at = time.monotonic()
        first.kill_host()
        new_leader = wait_for_holder(second, standby_pids)
        takeover_seconds = time.monotonic() - killed_at
        logging.getLogger(__name__).warning("scheduler takeover %.2f s after the kill (lease %s s)",
                                            takeover_seconds, LEASE_SECONDS)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and redis.get(RQScheduler.get_locking_key("low")) != new_leader.encode():
            time.sleep(0.05)
        locks = {redis.get(RQScheduler.get_locking_key(name)) for name in ("high", "normal", "low")}
    finally:
        first.stop()
        if second is not None:
            second.stop()

    # A lease renewed just before the kill lives LEASE_SECONDS; the standby tries every second (+ slack for a
    # loaded machine). Without the lease a standby on another host would wait out RQ's ~61 s locks.
    assert new_leader.startswith("host-2.") and leader.startswith("host-1.")
    assert takeover_seconds < LEASE_SECONDS + 3, takeover_seconds
    assert locks == {new_leader.encode()}  # the new leader took the dead one's RQ locks at once, not after ~61 s
