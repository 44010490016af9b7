"""The PDF worker class: RQ's SimpleWorker (jobs in the worker's own process, no fork per job).

RQ's default Worker forks a work-horse for every job; the fork (and the re-imports it triggers)
costs more than rendering a report. SimpleWorker runs jobs in-process; everything it does is stock
RQ, except two pieces that each buy one guarantee, both through RQ's public hooks:
- `death_penalty_class = TimeoutPenalty`: a job past its timeout is interrupted by something library
  code cannot swallow (RQ's JobTimeoutException is an Exception, and pypdf catches Exception while it
  flattens forms, so a timed-out form job would run on); a Typst compile is native code, so the timeout
  is raised when it returns to Python, milliseconds later;
- `kill_horse`: RQ's stop-job command (a cancel, or rq-dashboard's stop button) reaches a running job.
  RQ calls `kill_horse()` from its pubsub thread, a no-op without a horse; here it interrupts the
  job in the main thread with SIGUSR1, whose handler (`install_stop_handler`, called by the entry
  point before `work()`) raises JobStoppedError.
What the fork gave in isolation: the process exits after MAX_JOBS_PER_WORKER jobs (memory growth), and
a job that kills the process takes only this worker down; supervisor restarts it, and the reconciler
re-queues the job it left behind.
tests/workers/test_worker.py pins the RQ behaviour these pieces rely on, so an rq upgrade that
changes it fails a test.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from rq import get_current_job
from rq.timeouts import JobTimeoutException, UnixSignalDeathPenalty
from rq.worker import SimpleWorker

log = logging.getLogger(__name__)

STOP_SIGNAL = signal.SIGUSR1  # RQ's own handlers cover SIGINT and SIGTERM only


class JobStoppedError(BaseException):
    """The running job was stopped on request (cancel).

    A BaseException, like KeyboardInterrupt: libraries catch `Exception` broadly (pypdf logs and goes on
    inside form flattening), and a stop must not be swallowed there.
    """


class JobTimedOutError(BaseException):
    """The running job went past its timeout (a BaseException for the same reason as JobStoppedError)."""


class TimeoutPenalty(UnixSignalDeathPenalty):
    """RQ's SIGALRM death penalty, raising JobTimedOutError instead of the swallowable JobTimeoutException."""

    def __init__(self, timeout: int, exception: type[BaseException] = JobTimeoutException, **kwargs: Any) -> None:
        super().__init__(timeout, exception, **kwargs)
        self.seconds = timeout  # for the message: RQ keeps its copy private

    def handle_death_penalty(self, signum: int, frame: FrameType | None) -> None:
        """Raise JobTimedOutError in the job (RQ's SIGALRM handler)."""
        raise JobTimedOutError(f"Task exceeded maximum timeout value ({self.seconds} seconds)")


class PdfWorker(SimpleWorker):
    """RQ's SimpleWorker whose timeouts cannot be swallowed and whose running job RQ's stop-job command stops."""

    death_penalty_class = TimeoutPenalty
    # The job the last stop was meant for: a SIGUSR1 landing after that job ended stops nothing.
    stop_requested_for: str | None = None

    def install_stop_handler(self) -> None:
        """Make STOP_SIGNAL raise JobStoppedError in this worker's job (main thread, before `work()`)."""
        signal.signal(STOP_SIGNAL, self.raise_if_stopped)

    def raise_if_stopped(self, signum: int, frame: FrameType | None) -> None:
        """STOP_SIGNAL's handler: raise JobStoppedError if the job now running is the one to stop."""
        # rq.get_current_job() is set only while the job function runs: RQ's bookkeeping around it
        # (the result, the registries) is never interrupted.
        job = get_current_job()
        if job is not None and job.id == self.stop_requested_for:
            raise JobStoppedError("stopped on request")

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Stop the running job: there is no horse, so interrupt the main thread, which runs the job."""
        job_id = self.get_current_job_id()
        if job_id is None:
            return
        if signal.getsignal(STOP_SIGNAL) != self.raise_if_stopped:
            # SIGUSR1's default action ends the process: without our handler, the job runs on instead.
            log.warning("job=%s event=stop_ignored reason='install_stop_handler() was not called'", job_id)
            return
        self.stop_requested_for = job_id
        log.info("job=%s event=stop_requested", job_id)
        signal.pthread_kill(threading.main_thread().ident, STOP_SIGNAL)
