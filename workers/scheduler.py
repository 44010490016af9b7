"""The scheduler program: `python -m workers.scheduler`.

One loop, several periodic tasks:
- RQ's scheduler for delayed retries (its lock per queue lives interval + 60 s, so after this
  process is SIGKILLed the restarted one takes over within about a minute);
- runAt jobs whose time has come (kept in SQL until due, so a Redis wipe cannot lose them);
- the reconciler, the webhook/Mongo outbox relay and the PDF retention clean-up.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from rq import Queue
from rq.scheduler import RQScheduler

from config import Settings
from config.logging import setup_logging
from config.netguard import install_loopback_guard
from store import jobs as job_store
from store.models import utcnow
from workers import relay
from workers.queues import PDF_QUEUES, WEBHOOKS
from workers.runtime import Runtime, build_runtime, set_runtime
from workers.submit import enqueue_job

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
        except Exception:  # noqa: BLE001 - a failing task must not stop the others
            log.exception("event=task_failed task=%s", self.name)


class RetryScheduler:
    """Moves due RQ jobs (delayed retries) from the scheduled registries to their queues."""

    def __init__(self, rt: Runtime):
        queues = [Queue(name, connection=rt.redis) for name in (*PDF_QUEUES, WEBHOOKS)]
        self.scheduler = RQScheduler(queues, connection=rt.redis, interval=1)
        self.names = set(self.scheduler._queue_names)

    def __call__(self, rt: Runtime) -> None:
        if self.scheduler.acquired_locks != self.names:
            self.scheduler.acquire_locks()
        else:
            self.scheduler.heartbeat()
        self.scheduler.enqueue_scheduled_jobs()

    def stop(self) -> None:
        """Release the locks so another scheduler can take over at once."""
        try:
            self.scheduler.release_locks()
        except Exception:  # noqa: BLE001
            log.warning("event=scheduler_lock_release_failed")


def enqueue_due_run_at_jobs(rt: Runtime) -> int:
    """Hand runAt jobs whose time has come to RQ."""
    with rt.session() as session:
        due = job_store.claim_due_scheduled(session, utcnow())
    for job in due:
        log.info("job=%s event=due run_at=%s", job.job_id, job.run_at)
        enqueue_job(rt, job)
    return len(due)


def build_tasks(rt: Runtime, retry_scheduler: RetryScheduler) -> list[PeriodicTask]:
    """The periodic tasks of this program, with their intervals from settings."""
    settings = rt.settings
    tasks = [
        PeriodicTask("rq_scheduler", settings.scheduler_interval, retry_scheduler),
        PeriodicTask("run_at", settings.scheduler_interval, enqueue_due_run_at_jobs),
    ]
    tasks.extend(extra_tasks(settings))
    return tasks


def extra_tasks(settings: Settings) -> list[PeriodicTask]:
    """Reconciler, relay and retention tasks (each module registers here)."""
    return [PeriodicTask("webhook_relay", settings.scheduler_interval, relay.relay_due_deliveries)]


def main() -> int:
    """Run the periodic tasks until SIGTERM/SIGINT."""
    settings = Settings.from_env()
    setup_logging(settings.log_level, process="scheduler")
    if settings.loopback_only:
        install_loopback_guard()
    rt = build_runtime(settings, socket_timeout=5)
    set_runtime(rt)
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    retry_scheduler = RetryScheduler(rt)
    tasks = build_tasks(rt, retry_scheduler)
    log.info("event=scheduler_start tasks=%s", ",".join(task.name for task in tasks))
    while not stopping:
        now = time.monotonic()
        for task in tasks:
            task.maybe_run(rt, now)
        time.sleep(min(0.2, settings.scheduler_interval))
    retry_scheduler.stop()
    log.info("event=scheduler_stop")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
