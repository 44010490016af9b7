"""PdfWorker: stock RQ SimpleWorker behaviour, plus timeouts and stops that library code cannot swallow.

The tests named `test_rq_...` pin the RQ behaviour workers/rq_worker.py relies on: an rq upgrade that
changes it fails here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
from rq import Queue, get_current_job
from rq.command import send_stop_job_command
from rq.job import JobStatus

from store import jobs as job_store
from tests.conftest import PROJECT_DIR, auth, run_jobs, sample_request
from workers.rq_worker import STOP_SIGNAL, PdfWorker


@pytest.fixture
def own_signals() -> Iterator[None]:
    """Put back the handlers a worker's work() replaces (RQ never restores them)."""
    numbers = (signal.SIGINT, signal.SIGTERM, signal.SIGALRM, STOP_SIGNAL)
    saved = {number: signal.getsignal(number) for number in numbers}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def swallow_exceptions_for(seconds: float) -> str:
    """Wait, catching Exception broadly as pypdf does in places (RQ imports this job function by name)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(0.01)
        except Exception:  # noqa: BLE001, S110 - the point of this test double
            pass
    return "ran to the end"


def stop_myself_then_wait(seconds: float) -> str:
    """Send RQ's stop-job command for the running job itself (what a cancel sends), then wait."""
    job = get_current_job()
    send_stop_job_command(job.connection, job.id)
    return swallow_exceptions_for(seconds)


def signal_a_stop() -> str:
    """Raise the stop signal in this process, as kill_horse does, however late."""
    os.kill(os.getpid(), STOP_SIGNAL)
    return "finished"


def request_warm_stop(value: int) -> int:
    """Send this process SIGTERM (what `supervisorctl stop` sends) while the job runs."""
    os.kill(os.getpid(), signal.SIGTERM)
    return value


def answer(value: int) -> int:
    """A job function that just returns."""
    return value


def work(queue: Queue, *, stop_handler: bool = True) -> PdfWorker:
    """Run `queue`'s jobs in-process (burst), as workers.pdf_worker does."""
    worker = PdfWorker([queue], connection=queue.connection)
    if stop_handler:
        worker.install_stop_handler()
    worker.work(burst=True)
    return worker


def test_rq_simple_worker_times_a_job_out_in_process_with_our_death_penalty(runtime, own_signals) -> None:
    queue = Queue("timeout-pin", connection=runtime.redis)
    job = queue.enqueue(swallow_exceptions_for, 60, job_timeout=1)
    work(queue)
    # RQ's JobTimeoutException would have been swallowed and the job would have run to its end.
    assert job.get_status(refresh=True) == JobStatus.FAILED
    assert "JobTimedOutError: Task exceeded maximum timeout value (1 seconds)" in job.latest_result().exc_string


def test_rq_stop_job_command_reaches_kill_horse_of_the_worker_running_the_job(runtime, own_signals) -> None:
    queue = Queue("stop-pin", connection=runtime.redis)
    job = queue.enqueue(stop_myself_then_wait, 60)
    worker = work(queue)
    assert worker.stop_requested_for == job.id
    assert job.get_status(refresh=True) == JobStatus.STOPPED  # RQ's own record of a stop: no retry
    assert "JobStoppedError: stopped on request" in job.latest_result().exc_string


def test_rq_signal_set_up_in_work_leaves_the_stop_handler_in_place(runtime, own_signals) -> None:
    worker = work(Queue("nothing-queued", connection=runtime.redis))
    assert signal.getsignal(signal.SIGTERM) == worker.request_stop  # RQ's own set-up did run
    assert signal.getsignal(STOP_SIGNAL) == worker.raise_if_stopped


@pytest.mark.parametrize("meant_for_this_job", [True, False])
def test_stop_signal_stops_only_the_job_it_was_meant_for(runtime, own_signals, meant_for_this_job) -> None:
    queue = Queue("late-stop", connection=runtime.redis)
    job = queue.enqueue(signal_a_stop)
    worker = PdfWorker([queue], connection=runtime.redis)
    worker.install_stop_handler()
    # A stop for an earlier job may land after it ended: the job running then goes on.
    worker.stop_requested_for = job.id if meant_for_this_job else "an-earlier-job"
    worker.work(burst=True)
    expected = JobStatus.FAILED if meant_for_this_job else JobStatus.FINISHED
    assert job.get_status(refresh=True) == expected


def test_stop_without_the_stop_handler_leaves_the_job_running(runtime, own_signals) -> None:
    # SIGUSR1's default action ends the process: kill_horse must not send it unhandled.
    signal.signal(STOP_SIGNAL, signal.SIG_DFL)
    queue = Queue("no-handler", connection=runtime.redis)
    job = queue.enqueue(stop_myself_then_wait, 1)
    work(queue, stop_handler=False)
    assert job.get_status(refresh=True) == JobStatus.FINISHED and job.return_value() == "ran to the end"


def test_sigterm_during_a_job_lets_it_finish_then_stops_the_worker(runtime, own_signals) -> None:
    queue = Queue("warm-stop", connection=runtime.redis)
    first, second = queue.enqueue(request_warm_stop, 1), queue.enqueue(answer, 2)
    work(queue)
    assert first.get_status(refresh=True) == JobStatus.FINISHED and first.return_value() == 1
    assert second.get_status(refresh=True) == JobStatus.QUEUED  # no job taken after the stop


def test_a_finished_job_keeps_all_of_rqs_records(runtime, own_signals) -> None:
    from rq.registry import FinishedJobRegistry, StartedJobRegistry
    from rq.results import Result

    queue = Queue("records", connection=runtime.redis)
    job = queue.enqueue(answer, 42)
    worker = work(queue)
    job.refresh()
    assert job.get_status() == JobStatus.FINISHED and job.ended_at is not None
    assert job.latest_result().type == Result.Type.SUCCESSFUL and job.return_value() == 42
    assert job.id in FinishedJobRegistry(queue=queue) and job.id not in StartedJobRegistry(queue=queue)
    assert job.get_executions() == []
    worker.refresh()
    assert worker.successful_job_count == 1 and worker.total_working_time > 0


class SwallowingTemplate:
    """A template whose render catches Exception broadly while it works (as pypdf does in places)."""

    def __init__(self, inner, *, stop_itself: bool = False):  # noqa: ANN001
        self.inner = inner
        self.stop_itself = stop_itself

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.inner, name)

    def render(self, data, progress=None, *, code=None, job_id=None) -> bytes:  # noqa: ANN001
        if self.stop_itself:
            stop_myself_then_wait(30)
        else:
            swallow_exceptions_for(30)
        return self.inner.render(data, progress, code=code, job_id=job_id)


class SwallowingRegistry:
    def __init__(self, inner, *, stop_itself: bool = False):  # noqa: ANN001
        self.inner = inner
        self.stop_itself = stop_itself

    def get(self, product_id: str) -> SwallowingTemplate:
        return SwallowingTemplate(self.inner.get(product_id), stop_itself=self.stop_itself)

    def all(self) -> list:
        return self.inner.all()


def _submit_swallowing_job(client, runtime, *, stop_itself: bool = False) -> str:  # noqa: ANN001
    runtime.overrides["templates"] = SwallowingRegistry(runtime.templates, stop_itself=stop_itself)
    runtime.__dict__.pop("templates")
    return client.post("/api/reports/generate-async", json=sample_request(), headers=auth()).json["job_id"]


def test_a_timed_out_job_fails_with_the_timeout_message(client, runtime, own_signals) -> None:
    runtime.settings = runtime.settings.with_changes(job_timeout=1, job_retry_delays=())
    job_id = _submit_swallowing_job(client, runtime)
    run_jobs(runtime)
    with runtime.session() as session:
        job = job_store.get_job(session, job_id)
    # Had the render swallowed the timeout, it would have completed after its 30 s.
    assert job.status == "failed" and job.error_message == "timed out after 1 s"


def test_a_stopped_job_ends_cancelled_even_when_its_render_catches_exception(client, runtime, own_signals) -> None:
    job_id = _submit_swallowing_job(client, runtime, stop_itself=True)
    run_jobs(runtime)
    with runtime.session() as session:
        job = job_store.get_job(session, job_id)
    assert job.status == "cancelled" and job.error_message == "cancelled while running (stopped on request)"
    assert job.retry_count == 0


def test_preload_imports_the_job_function_and_opens_a_sql_connection_before_the_first_job(tmp_path) -> None:
    # In a fresh interpreter: this test process has long imported everything.
    code = textwrap.dedent(f"""
        import sys
        from config import Settings
        from workers.pdf_worker import preload
        from jobs.runtime import build_runtime
        from pathlib import Path
        settings = Settings(data_dir=Path({str(tmp_path / "var")!r}))
        settings.data_dir.mkdir(parents=True)
        runtime = build_runtime(settings)
        assert "workers.pdf_job" not in sys.modules
        preload(runtime)
        assert "workers.pdf_job" in sys.modules
        assert runtime.engine.pool.checkedin() == 1  # the connection the first job will use
    """)
    completed = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr


def test_preload_goes_on_when_a_templates_warm_up_fails(runtime, monkeypatch, caplog) -> None:
    from render import TypstTemplate
    from workers.pdf_worker import preload

    def broken(self) -> None:  # noqa: ANN001
        raise ValueError("font file missing")

    monkeypatch.setattr(TypstTemplate, "warm_up", broken)
    with caplog.at_level("WARNING"):
        preload(runtime)
    assert "event=warm_up_failed product=minatBakatUmum error='font file missing'" in caplog.text


