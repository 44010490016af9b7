"""The PDF worker class: runs jobs in its own process, without a fork per job.

RQ's default Worker forks a work-horse for every job; the fork (and the re-imports it triggers)
costs more than rendering a report. This worker runs jobs in-process like RQ's SimpleWorker and
keeps what the fork gave:
- job timeouts: RQ's SIGALRM death penalty works in-process (a Typst compile takes milliseconds: the
  timeout is raised as soon as it returns to Python);
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
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.rate_limit import release_slot
from rq.registry import StartedJobRegistry
from rq.timeouts import UnixSignalDeathPenalty
from rq.utils import now
from rq.worker import SimpleWorker, WorkerStatus

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

    It also spares RQ's per-job round trips that change nothing, with the same writes (a job that
    makes no calls of its own: 18 round trips in rq 3.0's SimpleWorker, 5 here):
    - a heartbeat goes out at most every HEARTBEAT_EVERY s, and an unchanged state is not written again;
    - the execution's record and the job's start go to Redis in one round trip instead of two;
    - a finished job gets no heartbeat of its own (it is only there for RQ's success callbacks,
      which PDF jobs have none of), and its success is one MULTI instead of WATCH, SMEMBERS, MULTI
      and the idle state after it: the dependents are read inside the MULTI and moved by RQ itself
      in the rare case there are any (none of this service's jobs has dependents).
    """

    death_penalty_class = TimeoutPenalty
    _beat_at: float | None = None
    _held: Pipeline | None = None  # prepare_execution's commands, sent with prepare_job_execution's
    _written_state: str | None = None  # the state last written to the worker's hash

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
        """RQ's set_state, skipping the write when Redis has `state` already (handle_job_success
        writes "idle" with the job's success, before RQ's loop sets it)."""
        if pipeline is None and state == self._written_state:
            self._state = state
            return
        super().set_state(state, pipeline=pipeline)
        self._written_state = state

    def prepare_execution(self, job: Job) -> Execution:
        """RQ's prepare_execution (the execution's record, the busy state), sent with the job's start."""
        pipe = self.connection.pipeline()
        execution = Execution.create(job, self.get_heartbeat_ttl(job), pipeline=pipe, worker_name=self.name)
        self.executions[execution.id] = execution
        self.set_state(WorkerStatus.BUSY, pipeline=pipe)
        self._held = pipe
        return execution

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        """RQ's prepare_job_execution (rq 3.0), on the pipeline prepare_execution left: one round trip."""
        pipe, self._held = self._held, None
        if pipe is None:
            super().prepare_job_execution(job, remove_from_intermediate_queue)
            return
        with pipe:
            heartbeat_ttl = self.get_heartbeat_ttl(job)
            self.heartbeat(heartbeat_ttl, pipeline=pipe)
            job.heartbeat(now(), heartbeat_ttl, pipeline=pipe)
            job.prepare_for_execution(self.name, pipeline=pipe)
            pipe.persist(job.key)
            if remove_from_intermediate_queue:
                pipe.lrem(Queue(job.origin, connection=self.connection).intermediate_queue_key, 1, job.id)
            pipe.execute()
        self.procline(f"Processing {job.func_name} from {job.origin} since {time.time()}")

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        """The run's end time; RQ's job heartbeat here only keeps a job alive through its callbacks."""
        job.ended_at = now()

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry: StartedJobRegistry,
                           execution: Execution) -> None:
        """RQ's handle_job_success (rq 3.0) in one MULTI, the idle state with it; dependents moved after."""
        if job.repeats_left:
            super().handle_job_success(job, queue, started_job_registry, execution)
            return
        with self.connection.pipeline() as pipe:
            self.increment_successful_job_count(pipeline=pipe)
            self.increment_total_working_time(job.ended_at - job.started_at, pipe)  # type: ignore[operator]
            result_ttl = job.get_result_ttl(self.default_result_ttl)
            if result_ttl != 0:
                job._handle_success(result_ttl, pipeline=pipe, worker_name=self.name, execution_id=execution.id,
                                    execution_started_at=execution.created_at, execution_ended_at=job.ended_at)
            job.cleanup(result_ttl, pipeline=pipe, remove_from_queue=False)
            self.cleanup_execution(job, pipeline=pipe, execution=execution)
            # "idle" in Redis only: RQ's own state stays busy until its loop sets it, so a warm stop
            # (SIGTERM) landing here still waits for this job instead of raising StopRequested into it.
            pipe.hset(self.key, "state", WorkerStatus.IDLE)
            # Read in the same MULTI as the finished status: a dependent added later sees the job
            # finished and is enqueued by its enqueuer, one added before is in this set.
            pipe.smembers(job.dependents_key)
            dependents = pipe.execute()[-1]
        self._written_state = WorkerStatus.IDLE
        job._status = JobStatus.FINISHED
        if dependents:
            queue.enqueue_ready_jobs_by_queue(queue.move_dependents_to_ready(job))
        release_slot(job)

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
