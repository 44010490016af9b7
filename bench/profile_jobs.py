"""Where a job's CPU goes: submit, PDF worker and webhook sender, each under cProfile, in one process.

`.venv/bin/python -m bench.profile_jobs [jobs] [top] [--null-render]` starts an embedded Redis and a signed-webhook
receiver on 127.0.0.1 (in a child process, so its CPU is not counted), submits `jobs` requests through
the Flask app, works them with the PDF worker class, then drains the webhook sender's list once
(`workers.webhook_sender.drain`), and prints CPU ms per job of each step (the whole process, every
thread) and its most costly functions (every thread the step runs, each profiled on its own CPU
clock). With --null-render every job returns one PDF rendered up front, so what is left is the
service's own cost per job; with top 0 the steps run without cProfile (its overhead is about as
large as the code it measures). A tool for finding waste; `make bench` is where figures are reported.
"""

from __future__ import annotations

import cProfile
import io
import json
import multiprocessing
import os
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

from rq import Queue

from bench.receiver import WebhookReceiver
from bench.sample_data import SAMPLE
from bench.service_bench import new_secret
from config import ClientConfig, Settings
from jobs.queues import PDF_QUEUES
from jobs.runtime import build_runtime, set_runtime
from ops import embedded_redis
from store.db import migrate
from workers.pdf_worker import preload
from workers.rq_worker import PdfWorker
from workers.webhook_sender import drain


def profiled(label: str, jobs: int, top: int, work: Callable[[], object]) -> None:
    """Run `work` under cProfile and print CPU ms per job and the top functions (top 0: no cProfile)."""
    if top == 0:  # the CPU figure alone, without cProfile's own overhead
        before = os.times()
        work()
        after = os.times()
        user, system = (after.user - before.user) * 1000 / jobs, (after.system - before.system) * 1000 / jobs
        print(f"\n=== {label}: {user + system:.2f} CPU ms per job ({jobs} jobs; user {user:.2f}, system {system:.2f})")
        return
    profiler = cProfile.Profile(time.thread_time)
    with profiled_threads() as thread_profilers:
        started = time.process_time()
        profiler.runcall(work)
        spent = time.process_time() - started
    print(f"\n=== {label}: {spent * 1000 / jobs:.2f} CPU ms per job ({jobs} jobs)")
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    for thread_profiler in thread_profilers:
        stats.add(thread_profiler)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    print(out.getvalue())


@contextmanager
def profiled_threads() -> Iterator[list[cProfile.Profile]]:
    """Profile every thread started inside the block (each on its own CPU clock); those that ended are listed."""
    finished: list[cProfile.Profile] = []
    original = threading.Thread.run

    def run(thread: threading.Thread) -> None:
        profiler = cProfile.Profile(time.thread_time)
        try:
            profiler.runcall(original, thread)
        finally:
            finished.append(profiler)

    threading.Thread.run = run  # type: ignore[method-assign]
    try:
        yield finished
    finally:
        threading.Thread.run = original  # type: ignore[method-assign]


def serve_receiver(secret: str, pipe: Connection) -> None:
    """Child process: run the receiver until told to stop, then report what it got."""
    receiver = WebhookReceiver(secret).start()
    pipe.send(receiver.url)
    pipe.recv()
    receiver.stop()
    pipe.send((len(receiver.arrivals), receiver.bad_signatures, receiver.duplicates))


class NullTemplates:
    """A template registry whose one template returns the same PDF bytes every time."""

    def __init__(self, real) -> None:  # noqa: ANN001
        self.real = real
        self.template = real.get("minatBakatUmum")
        self.pdf = self.template.render(json.loads(SAMPLE.read_text())["data"], code="null")

    def get(self, product_id: str):  # noqa: ANN201
        return self

    def all(self):  # noqa: ANN201
        return self.real.all()

    def render(self, data, progress=None, code=None, job_id=None) -> bytes:  # noqa: ANN001
        return self.pdf


def main(argv: list[str]) -> int:
    """Profile `jobs` jobs end to end (argv: [jobs] [top] [--null-render])."""
    null_render = "--null-render" in argv
    argv = [arg for arg in argv if arg != "--null-render"]
    jobs = int(argv[0]) if argv else 200
    top = int(argv[1]) if len(argv) > 1 else 30
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        redis_process = embedded_redis.start(directory / "redis")
        secret = new_secret()
        pipe, child_pipe = multiprocessing.Pipe()
        receiver = multiprocessing.get_context("spawn").Process(target=serve_receiver, args=(secret, child_pipe))
        receiver.start()
        receiver_url = pipe.recv()
        try:
            settings = Settings(
                data_dir=directory / "var",
                redis_url=f"unix://{directory / 'redis' / 'redis.sock'}",
                api_clients=(ClientConfig(name="bench", api_key="bench-key-0123456789", webhook_secret=secret,
                                          rate_limit="1000000/minute", max_queued=jobs + 10),),
                callback_allowed_hosts=("127.0.0.0/8",),
                max_queue_size=jobs + 10,
                loopback_only=True,
                log_level="WARNING",
            )
            settings.data_dir.mkdir(parents=True)
            migrate(settings.sqlalchemy_url)
            rt = build_runtime(settings)
            set_runtime(rt)
            from api import create_app

            client = create_app(runtime=rt).test_client()
            body = SAMPLE.read_text()

            def submit_all() -> None:
                for number in range(jobs):
                    request = body.replace('"code": "', f'"callback": "{receiver_url}", "code": "p{number}-', 1)
                    response = client.post(
                        "/api/reports/generate-async", data=request,
                        headers={"Authorization": "Bearer bench-key-0123456789", "Content-Type": "application/json"},
                    )
                    assert response.status_code == 202, response.get_data(as_text=True)

            rt.templates.all()
            profiled("submit (Flask test client, no HTTP server)", jobs, top, submit_all)
            if null_render:
                rt.overrides["templates"] = NullTemplates(rt.templates)
                del rt.__dict__["templates"]  # the cached registry
            # As `python -m workers.pdf_worker` does before its first job: without it the storage backends'
            # import (~0.23 s, once) counted as ~0.8 ms per job of a 300-job run.
            preload(rt)
            pdf_worker = PdfWorker([Queue(name, connection=rt.redis) for name in PDF_QUEUES], connection=rt.redis)
            profiled("PDF worker", jobs, top, lambda: pdf_worker.work(burst=True, logging_level="WARNING"))
            profiled("webhook worker (sender, drains the list once)", jobs, top, lambda: drain(rt))
        finally:
            pipe.send("stop")
            received, bad, duplicates = pipe.recv()
            receiver.join()
            print(f"webhooks received: {received}/{jobs} (bad signatures {bad}, duplicates {duplicates})")
            redis_process.terminate()
            redis_process.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
