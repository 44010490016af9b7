"""Start-up check that Redis keeps what it is given: persistence on, no eviction."""

from __future__ import annotations

import logging

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def durability_problems(redis: Redis) -> list[str]:
    """What makes this Redis able to lose accepted jobs (empty when it is configured safely)."""
    try:
        config = redis.config_get("appendonly") | redis.config_get("save") | redis.config_get("maxmemory-policy")
    except RedisError as exc:
        # Managed Redis services often disable CONFIG; say we could not check rather than guess.
        return [f"could not read the Redis configuration ({exc}); make sure AOF or RDB persistence is on "
                "and maxmemory-policy is noeviction"]
    problems = []
    if config.get("appendonly") != "yes" and not config.get("save"):
        problems.append("Redis has no persistence (appendonly no, no save points): a Redis restart loses "
                        "every queued job until the reconciler re-queues them from SQL; set appendonly yes")
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        problems.append(f"Redis maxmemory-policy is {policy}: under memory pressure it evicts queued jobs; "
                        "set maxmemory-policy noeviction")
    return problems


def warn_if_not_durable(redis: Redis) -> list[str]:
    """Log each durability problem loudly (WARNING, one line each) and return them."""
    problems = durability_problems(redis)
    for problem in problems:
        log.warning("event=redis_not_durable problem=%r", problem)
    return problems
