"""The PDF worker class: runs jobs in its own process, without a fork per job.

RQ's default Worker forks a work-horse for every job; the fork (and the re-imports it triggers)
costs more than rendering a report. This worker runs jobs in-process like RQ's SimpleWorker and
keeps what the fork gave:
- job timeouts: RQ's SIGALRM death penalty works in-process (reportlab is pure Python);
- stopping a running job: the stop-job command raises JobStoppedError in the job's thread;
- memory growth: the process exits after MAX_JOBS_PER_WORKER jobs and supervisor starts a new one;
- crash isolation: a job that kills the process takes only this worker down; supervisor restarts
  it, and the reconciler re-queues the job it left behind in RQ's started registry.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from redis.client import Pipeline
from rq.timeouts import UnixSignalDeathPenalty
from rq.worker import SimpleWorker

log = logging.getLogger(__name__)


class JobStoppedError(BaseException):
    """The running job was stopped on request (cancel).

    A BaseException, like KeyboardInterrupt: libraries catch `Exception` broadly (pypdf logs and goes on
    inside form flattening), and a stop must not be swallowed there.
    """


class JobTimedOutError(BaseException):
    """The running job went past its timeout (a BaseException for the same reason as JobStoppedError)."""


class TimeoutPenalty(UnixSignalDeathPenalty):
    """RQ's SIGALRM death penalty, raising JobTimedOutError instead of the swallowable JobTimeoutException."""

    def handle_death_penalty(self, signum: int, frame: object) -> None:
        raise JobTimedOutError(f"Task exceeded maximum timeout value ({self._timeout} seconds)")


# A worker's key lives worker_ttl + 60 s (480 s by default): a heartbeat every few seconds is plenty.
HEARTBEAT_EVERY = 5.0


class PdfWorker(SimpleWorker):
    """An RQ SimpleWorker whose running job can be stopped by RQ's stop-job command.

    It also spares RQ's per-job bookkeeping that changes nothing: RQ sends a heartbeat (three
    commands, three round trips) before and after every job and sets the idle state twice; here a
    heartbeat goes out at most every HEARTBEAT_EVERY s in one round trip, and an unchanged state is
    not written again.
    """

    death_penalty_class = TimeoutPenalty
    _beat_at: float | None = None

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat, throttled and pipelined when it is not part of a pipeline already."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline=pipeline)
            return
        if timeout is None and self._beat_at is not None and time.monotonic() - self._beat_at < HEARTBEAT_EVERY:
            return
        with self.connection.pipeline(transaction=False) as pipe:
            super().heartbeat(timeout, pipeline=pipe)
            pipe.execute()
        self._beat_at = time.monotonic()

    def set_state(self, state: str, pipeline: Pipeline | None = None) -> None:
        """RQ's set_state, skipping the write when the state is already `state`."""
        if pipeline is None and state == getattr(self, "_state", None):
            return
        super().set_state(state, pipeline=pipeline)

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Stop the running job: there is no horse, so interrupt our own main thread."""
        if self.get_current_job_id() is None:
            return
        log.info("job=%s event=stop_requested", self.get_current_job_id())
        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)

    def _raise_stopped(self, signum: int, frame: object) -> None:
        # Only the job the stop was meant for: the signal may land just after it finished.
        stopped = self._stopped_job_id
        if stopped is not None and stopped == self.get_current_job_id():
            raise JobStoppedError("stopped on request")

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        signal.signal(signal.SIGUSR1, self._raise_stopped)
