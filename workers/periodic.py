"""A function the scheduler program runs every `interval` seconds."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from jobs.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class PeriodicTask:
    """A function run every `interval` seconds; its errors are logged, never fatal."""

    name: str
    interval: float
    run: Callable[[Runtime], object]
    last: float = 0.0

    def maybe_run(self, rt: Runtime, now: float) -> None:
        if now - self.last < self.interval:
            return
        self.last = now
        try:
            self.run(rt)
        except RedisError as exc:  # Redis down: expected during outages, no traceback
            log.warning("event=task_skipped task=%s reason=%r", self.name, str(exc))
        except Exception:  # noqa: BLE001 - a failing task must not stop the others
            log.exception("event=task_failed task=%s", self.name)
