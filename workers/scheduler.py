"""The scheduler program: `python -m workers.scheduler`.

One loop, several periodic tasks:
- RQ's scheduler for delayed retries;
- runAt jobs whose time has come (kept in SQL until due, so a Redis wipe cannot lose them);
- the runs of recurring schedules (jobs/schedules.py; safe with any number of schedulers at once);
- the reconciler, the webhook/Mongo outbox relay and the PDF retention clean-up.
Any number of hosts may run it: those tasks run only in the process that holds the leader lease in
Redis (jobs/leader.py); the others stand by and take over within SCHEDULER_LEASE_SECONDS of the
leader's death. SQLite checkpoints and the sweep of this host's staged PDFs run in every one.
"""

from __future__ import annotations

import logging
import signal
import time

from rq import Queue
from rq.scheduler import RQScheduler

from config import Settings
from config.logging import setup_logging
from config.netguard import install_loopback_guard
from jobs import webhook_relay as relay
from jobs.leader import LeaderLease
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

    Only the leader runs it (jobs/leader.py), under the leader's own name. RQ's scheduler locks would
    outlive a killed holder by about a minute; a new leader knows that any lock held under another
    name is a former leader's (no one else takes these locks), so it takes them over at once.
    """

    def __init__(self, rt: Runtime, name: str):
        self.names = set(PDF_QUEUES)  # the queues whose locks this scheduler holds
        queues = [Queue(queue, connection=rt.redis) for queue in PDF_QUEUES]
        self.scheduler = RQScheduler(queues, connection=rt.redis, interval=1, name=name)
        self.redis = rt.redis
        self.took_over = False

    def __call__(self, rt: Runtime) -> None:
        if not self.took_over:
            self.take_over_former_leaders_locks()
            self.took_over = True
        if self.scheduler.acquired_locks != self.names:
            self.scheduler.acquire_locks()
        else:
            self.scheduler.heartbeat()
        self.scheduler.enqueue_scheduled_jobs()

    def take_over_former_leaders_locks(self) -> int:
        """Delete the scheduler locks held under another name (a former leader's); returns how many."""
        released = 0
        for queue_name in self.names:
            key = RQScheduler.get_locking_key(queue_name)
            holder = self.redis.get(key)
            if holder and holder.decode() != self.scheduler.name:
                # Compare-and-delete: only if that former leader still owns it.
                released += self.redis.eval(_DELETE_IF_EQUAL, 1, key, holder)
        if released:
            log.warning("event=scheduler_locks_taken_over count=%s", released)
        return released

    def stop(self) -> None:
        """Release the locks (leadership ends) so the next leader takes them at once."""
        self.took_over = False
        try:
            self.scheduler.release_locks()
        except Exception:  # noqa: BLE001
            log.warning("event=scheduler_lock_release_failed")


_DELETE_IF_EQUAL = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def enqueue_due_run_at_jobs(rt: Runtime) -> int:
    """Hand runAt jobs whose time has come to RQ."""
    with rt.session() as session:
        due = job_store.claim_due_scheduled(session, utcnow())
    for job in due:
        log.info("job=%s event=due run_at=%s", job.job_id, job.run_at)
        enqueue_job(rt, job)
    return len(due)


def build_tasks(rt: Runtime, retry_scheduler: RetryScheduler) -> list[PeriodicTask]:
    """The leader's periodic tasks (shared state: one scheduler across hosts runs them)."""
    settings = rt.settings
    return [
        PeriodicTask("rq_scheduler", settings.scheduler_interval, retry_scheduler),
        PeriodicTask("run_at", settings.scheduler_interval, enqueue_due_run_at_jobs),
        PeriodicTask("schedules", settings.scheduler_interval, run_due_schedules),
        *shared_tasks(settings),
    ]


def shared_tasks(settings: Settings) -> list[PeriodicTask]:
    """Reconciler, outbox relays and retention: the leader's besides retries and runAt."""
    return [
        PeriodicTask("reconciler", settings.reconcile_interval, reconcile),
        PeriodicTask("webhook_relay", settings.scheduler_interval, relay.relay_due_deliveries),
        PeriodicTask("retention", RETENTION_INTERVAL, purge_expired_pdfs),
        PeriodicTask("mongo_relay", RELAY_INTERVAL, relay_mongo_records),
    ]


def host_tasks() -> list[PeriodicTask]:
    """Tasks on this host's own files, run by every scheduler, leader or not (SQLite's WAL, staged PDFs)."""
    return [
        PeriodicTask("sql_checkpoint", CHECKPOINT_INTERVAL, lambda rt: checkpoint(rt.engine)),
        PeriodicTask("staging_sweep", STAGING_SWEEP_INTERVAL, sweep_staged),
    ]


class SchedulerLoop:
    """The scheduler's tick: hold (or try to take) the leader lease, then run what this process may run."""

    def __init__(self, rt: Runtime, leader: LeaderLease):
        self.rt = rt
        self.leader = leader
        self.retry_scheduler = RetryScheduler(rt, leader.name)
        self.leader_tasks = build_tasks(rt, self.retry_scheduler)
        self.own_tasks = host_tasks()
        # A standby must notice a dead leader well within the lease: renew/try a few times per ttl.
        self.hold_every = min(rt.settings.scheduler_interval, leader.ttl_ms / 3000)
        self.held_at = -self.hold_every
        self.acting = False

    def tick(self, now: float) -> None:
        """Run the due tasks (the leader's only while this process holds the lease)."""
        if now - self.held_at >= self.hold_every:
            self.held_at = now
            acting = self.leader.hold()
            if self.acting and not acting:
                self.retry_scheduler.stop()
            self.acting = acting
        if self.leader.is_leader:
            for task in self.leader_tasks:
                task.maybe_run(self.rt, now)
        for task in self.own_tasks:
            task.maybe_run(self.rt, now)

    def stop(self) -> None:
        """Give up the RQ locks and the lease so a standby takes over at its next tick."""
        if self.acting:
            self.retry_scheduler.stop()
        self.leader.release()


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
    loop = SchedulerLoop(rt, LeaderLease(rt.redis, settings.scheduler_lease_seconds, host=settings.host_name))
    log.info("event=scheduler_start holder=%s lease_seconds=%s tasks=%s", loop.leader.name,
             settings.scheduler_lease_seconds, ",".join(task.name for task in loop.leader_tasks + loop.own_tasks))
    while not stopping:
        loop.tick(time.monotonic())
        time.sleep(min(0.2, settings.scheduler_interval))
    loop.stop()
    log.info("event=scheduler_stop")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
