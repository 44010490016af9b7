"""The scheduler program: `python -m workers.scheduler`.

One loop, several periodic tasks:
- RQ's scheduler for delayed retries (its lock per queue lives interval + 60 s, so after this
  process is SIGKILLed the restarted one takes over within about a minute);
- runAt jobs whose time has come (kept in SQL until due, so a Redis wipe cannot lose them);
- the runs of recurring schedules (jobs/schedules.py; any number of schedulers may run at once);
- the reconciler, the webhook/Mongo outbox relay and the PDF retention clean-up.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import uuid

from rq import Queue
from rq.scheduler import RQScheduler

from config import Settings
from config.logging import setup_logging
from config.netguard import install_loopback_guard
from jobs import webhook_relay as relay
from jobs.mongo_relay import RELAY_INTERVAL, relay_mongo_records
from jobs.queues import PDF_QUEUES
from jobs.redis_check import warn_if_not_durable
from jobs.retention import purge_expired_pdfs, sweep_staged
from jobs.runtime import Runtime, build_runtime, set_runtime
from jobs.schedules import run_due_schedules
from jobs.submit import enqueue_job
from store import jobs as job_store
from store.db import checkpoint
from store.models import utcnow
from workers.periodic import PeriodicTask
from workers.reconciler import reconcile

log = logging.getLogger(__name__)

RETENTION_INTERVAL = 3600.0
STAGING_SWEEP_INTERVAL = 600.0  # seconds between sweeps of kept PDFs of ended jobs
CHECKPOINT_INTERVAL = 1.0  # SQLite's WAL, which the API does not checkpoint itself (store.db.make_engine)


class RetryScheduler:
    """Moves due RQ jobs (delayed retries) from the scheduled registries to their queues.

    RQ's scheduler lock outlives a killed holder by about a minute. The name of this scheduler
    carries host and pid, so a restarted scheduler on the same host sees that the holder is dead
    and takes its locks at once; a holder on another host is waited out (lock TTL, ~61 s).
    """

    def __init__(self, rt: Runtime):
        self.names = set(PDF_QUEUES)  # the queues whose locks this scheduler holds
        queues = [Queue(name, connection=rt.redis) for name in PDF_QUEUES]
        name = f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self.scheduler = RQScheduler(queues, connection=rt.redis, interval=1, name=name)
        self.redis = rt.redis
        self.released_dead = False

    def __call__(self, rt: Runtime) -> None:
        if not self.released_dead:
            self.release_locks_of_dead_holders()
            self.released_dead = True
        if self.scheduler.acquired_locks != self.names:
            self.scheduler.acquire_locks()
        else:
            self.scheduler.heartbeat()
        self.scheduler.enqueue_scheduled_jobs()

    def release_locks_of_dead_holders(self) -> int:
        """Delete scheduler locks held by a dead process on this host; returns how many."""
        released = 0
        for queue_name in self.names:
            key = RQScheduler.get_locking_key(queue_name)
            holder = self.redis.get(key)
            if holder and holder_is_dead(holder.decode()):
                # Compare-and-delete: only if the dead holder still owns it.
                released += self.redis.eval(_DELETE_IF_EQUAL, 1, key, holder)
        if released:
            log.warning("event=scheduler_locks_taken_over count=%s", released)
        return released

    def stop(self) -> None:
        """Release the locks so another scheduler can take over at once."""
        try:
            self.scheduler.release_locks()
        except Exception:  # noqa: BLE001
            log.warning("event=scheduler_lock_release_failed")


_DELETE_IF_EQUAL = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def holder_is_dead(holder: str) -> bool:
    """Whether a scheduler named host.pid.suffix ran on this host and its process is gone."""
    parts = holder.rsplit(".", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    if int(parts[1]) == os.getpid():  # an earlier scheduler whose pid this process reuses
        return True
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


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
        PeriodicTask("schedules", settings.scheduler_interval, run_due_schedules),
    ]
    tasks.extend(extra_tasks(settings))
    return tasks


def extra_tasks(settings: Settings) -> list[PeriodicTask]:
    """Reconciler, outbox relays, retention and staging clean-up."""
    return [
        PeriodicTask("reconciler", settings.reconcile_interval, reconcile),
        PeriodicTask("webhook_relay", settings.scheduler_interval, relay.relay_due_deliveries),
        PeriodicTask("retention", RETENTION_INTERVAL, purge_expired_pdfs),
        PeriodicTask("sql_checkpoint", CHECKPOINT_INTERVAL, lambda rt: checkpoint(rt.engine)),
        PeriodicTask("mongo_relay", RELAY_INTERVAL, relay_mongo_records),
        PeriodicTask("staging_sweep", STAGING_SWEEP_INTERVAL, sweep_staged),
    ]


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
    if settings.redis_url:  # the embedded Redis is configured by us; an external one may not be
        warn_if_not_durable(rt.redis)
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
