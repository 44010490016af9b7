"""The scheduler's leader lease: exactly one scheduler acts across hosts; a standby takes over when it dies.

Every scheduler calls `LeaderLease.hold()` once per tick. The holder renews the key (compare, then
PEXPIRE, in one Lua call); the others try `SET key name NX PX ttl` and act only once that succeeds.
A SIGTERMed holder deletes the key (compare-and-delete), so a standby takes over at its next tick;
a holder whose whole host died stops renewing, and a standby takes over within the lease's ttl; a
holder SIGKILLed on this host (its pid gone) is replaced at once by the scheduler supervisord restarts.

A holder that cannot renew (Redis unreachable, or the key lost in a Sentinel failover and taken by
another) stops acting as soon as its last renewal is a ttl old: two schedulers act at once for at
most the ttl of a lease lost in a failover, and every task they run is safe to run twice (conditional
SQL updates, RQ's own scheduler locks).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

LEADER_KEY = "pdfjobs:scheduler:leader"
_RENEW_IF_MINE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)
_REPLACE_IF_EQUAL = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) end "
    "return false"
)
_DELETE_IF_MINE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def holder_name(host: str | None = None) -> str:
    """This process's name in the lease: host.pid.random (the random part tells a reused pid apart)."""
    return f"{host or socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"


def holder_is_dead(holder: str, host: str | None = None) -> bool:
    """Whether a holder named host.pid.random ran on this host (HOST_NAME) and its process is gone."""
    parts = holder.rsplit(".", 2)
    if len(parts) != 3 or parts[0] != (host or socket.gethostname()) or not parts[1].isdigit():
        return False
    if int(parts[1]) == os.getpid():  # an earlier holder whose pid this process reuses
        return True
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class LeaderLease:
    """One scheduler's view of the leader lease in Redis."""

    def __init__(self, redis: Redis, ttl_seconds: float, name: str | None = None, key: str = LEADER_KEY, *,
                 host: str | None = None):
        self.redis = redis
        self.ttl_ms = int(ttl_seconds * 1000)
        self.host = host or socket.gethostname()  # HOST_NAME: whose pids this process can check
        self.name = name or holder_name(self.host)
        self.key = key
        self.renewed_at: float | None = None  # monotonic time of the last renewal that Redis confirmed

    @property
    def is_leader(self) -> bool:
        """Whether this process holds a lease that cannot have expired yet."""
        return self.renewed_at is not None and time.monotonic() - self.renewed_at < self.ttl_ms / 1000

    def hold(self) -> bool:
        """Renew the lease if held, else try to take it; returns whether this process is the leader now."""
        was_leader = self.is_leader
        started = time.monotonic()  # a renewal counts from before the call: Redis's ttl may start earlier
        try:
            if self.renewed_at is not None and self.redis.eval(_RENEW_IF_MINE, 1, self.key, self.name, self.ttl_ms):
                self.renewed_at = started
            elif self.redis.set(self.key, self.name, nx=True, px=self.ttl_ms) or self._take_from_dead_local_holder():
                self.renewed_at = started
            else:
                self.renewed_at = None  # another holds it (or took it over after a failover lost ours)
        except RedisError as exc:
            if was_leader:
                log.warning("event=leader_renew_failed holder=%s reason=%r", self.name, str(exc))
        leader = self.is_leader
        if leader != was_leader:
            log.warning("event=%s holder=%s ttl_ms=%s", "leader_acquired" if leader else "leader_lost",
                        self.name, self.ttl_ms)
        return leader

    def _take_from_dead_local_holder(self) -> bool:
        """Take the lease at once from a holder that ran on this host and whose process is gone (a
        scheduler SIGKILLed and restarted by supervisord), instead of waiting out its ttl."""
        holder = self.redis.get(self.key)
        if holder is None or not holder_is_dead(holder.decode(), self.host):
            return False
        return bool(self.redis.eval(_REPLACE_IF_EQUAL, 1, self.key, holder, self.name, self.ttl_ms))

    def release(self) -> bool:
        """Give the lease up (at SIGTERM) so a standby takes over at its next tick; True if it was held."""
        if self.renewed_at is None:
            return False
        self.renewed_at = None
        try:
            released = bool(self.redis.eval(_DELETE_IF_MINE, 1, self.key, self.name))
        except RedisError as exc:
            log.warning("event=leader_release_failed holder=%s reason=%r", self.name, str(exc))
            return False
        if released:
            log.info("event=leader_released holder=%s", self.name)
        return released

    def current_holder(self) -> str | None:
        """The name of the scheduler holding the lease now, if any."""
        value = self.redis.get(self.key)
        return value.decode() if value is not None else None
