"""Worker entry point: `python -m workers.pdf_worker [--queues high normal low] [--burst]`.

Builds settings, sets up logging and preloads the heavy imports (Typst, templates) once,
then works the queues in priority order.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal

from rq import Queue
from rq.utils import import_attribute

from config import Settings
from config.heap import freeze_startup_objects
from config.logging import setup_logging
from config.netguard import install_loopback_guard
from jobs.queues import GENERATE_PDF, PDF_QUEUES
from jobs.runtime import build_runtime, set_runtime
from jobs.stats import PDF_WORKER_TTL
from workers.rq_worker import PdfWorker

log = logging.getLogger(__name__)

MAX_JOBS_PER_WORKER = 5000


def main(argv: list[str] | None = None) -> int:
    """Run one worker process until it is stopped (or, with --burst, until the queues are empty)."""
    parser = argparse.ArgumentParser(description="PDF job worker")
    parser.add_argument("--queues", nargs="+", default=list(PDF_QUEUES))
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    setup_logging(settings.log_level, process="worker")
    if settings.loopback_only:
        install_loopback_guard()
    lower_cpu_priority(settings.worker_nice, settings.worker_sched_idle)
    runtime = build_runtime(settings)
    set_runtime(runtime)
    if set(args.queues) & set(PDF_QUEUES):
        preload(runtime)
        reload_templates_on_sighup(runtime)
    queues = [Queue(name, connection=runtime.redis) for name in args.queues]
    # A short worker_ttl: an idle worker heartbeats every 20 s, so queue stats tell a dead one within 30 s.
    worker = PdfWorker(queues, connection=runtime.redis, name=args.name, maintenance_interval=60,
                       worker_ttl=PDF_WORKER_TTL)
    worker.hostname = settings.host_name  # HOST_NAME: what queue stats group workers by (the machine's name by default)
    worker.install_stop_handler()  # work() installs RQ's SIGINT/SIGTERM handlers only: this one stays
    frozen = freeze_startup_objects()
    log.info("event=worker_start queues=%s frozen_objects=%s", ",".join(args.queues), frozen)
    worker.work(burst=args.burst, max_jobs=MAX_JOBS_PER_WORKER, logging_level=rq_log_level(settings.log_level))
    return 0


def lower_cpu_priority(niceness: int, sched_idle: bool = False) -> int:
    """Run this process at `niceness` (WORKER_NICE), and under SCHED_IDLE if asked (WORKER_SCHED_IDLE), so
    that the API on the same host gets the CPU first. Returns the niceness now.

    Only ever lowered: an unprivileged process cannot raise its priority again. SCHED_IDLE goes further
    than any niceness: the kernel lets a waking process of the normal policy preempt it at once and places
    wakeups on a CPU that runs only idle-policy work (a niced render still holds the CPU for its time
    slice); on a host with nothing else to run, renders get every cycle. Any process the worker starts
    inherits both. Where the policy is missing (not Linux) or refused, the niceness stays and a warning
    says so.
    """
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness > current:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
        log.info("event=worker_niceness niceness=%s", niceness)
    if sched_idle:
        use_sched_idle()
    return os.getpriority(os.PRIO_PROCESS, 0)


def use_sched_idle() -> None:
    """Put this process under SCHED_IDLE; a warning where the system has no such policy or refuses it."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError) as error:  # AttributeError: no SCHED_IDLE outside Linux
        log.warning("event=worker_sched_idle_unavailable error=%r", error)
        return
    log.info("event=worker_sched_idle")


def rq_log_level(level: str) -> str:
    """RQ's own level: its three INFO lines per job repeat our job=<id> events, so INFO becomes WARNING."""
    return "WARNING" if level == "INFO" else level


def reload_templates_on_sighup(runtime) -> None:  # noqa: ANN001
    """`supervisorctl signal HUP pdf_worker:*` reloads TEMPLATES_DIR before the next job."""
    catalog = runtime.templates
    if hasattr(catalog, "request_reload"):
        signal.signal(signal.SIGHUP, lambda _signum, _frame: catalog.request_reload())


def preload(runtime) -> None:  # noqa: ANN001
    """Import and build what every job needs, before the first job arrives (and before the heap is frozen).

    Without this a fresh worker's first job would wait for RQ to import the job function and for its
    first render; loading the templates renders each one's sample once, `warm_up` once more, and the
    first SQL and Redis connections are opened (`Runtime.open_connections`: when SQL is down the worker
    starts anyway and its first job connects).
    """
    for template in runtime.templates.all():
        try:
            template.warm_up()
        except Exception as exc:  # noqa: BLE001 - only a head start: the job reports a real render's error
            log.warning("event=warm_up_failed product=%s error=%r", template.product_id, str(exc))
    _ = runtime.storage
    import_attribute(GENERATE_PDF)  # as RQ does at the first job
    runtime.open_connections()


if __name__ == "__main__":
    raise SystemExit(main())
