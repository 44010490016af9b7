"""Where a job's CPU goes: submit, PDF worker and webhook worker, each under cProfile, in one process.

`.venv/bin/python -m bench.profile_jobs [jobs] [top] [--null-render]` starts an embedded Redis and a signed-webhook
receiver on 127.0.0.1, submits `jobs` requests through the Flask app, works them with the PDF worker
class, then the webhook queue, and prints CPU ms per job of each step and its most costly functions.
With --null-render every job returns one PDF rendered up front, so what is left is the service's own
cost per job. A tool for finding waste; `make bench` is where figures are reported.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rq import Queue

from bench.receiver import WebhookReceiver
from bench.service_bench import new_secret
from config import ClientConfig, Settings
from service import embedded_redis
from store.db import migrate
from workers.queues import PDF_QUEUES, WEBHOOKS
from workers.runtime import build_runtime, set_runtime
from workers.worker import PdfWorker

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "minatBakatUmum.json"


def profiled(label: str, jobs: int, top: int, work: Callable[[], object]) -> None:
    """Run `work` under cProfile and print CPU ms per job and the top functions."""
    profiler = cProfile.Profile(time.process_time)
    started = time.process_time()
    profiler.runcall(work)
    spent = time.process_time() - started
    print(f"\n=== {label}: {spent * 1000 / jobs:.2f} CPU ms per job ({jobs} jobs)")
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    print(out.getvalue())


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

    def render(self, data, progress=None, code=None) -> bytes:  # noqa: ANN001
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
        receiver = WebhookReceiver(secret).start()
        try:
            settings = Settings(
                data_dir=directory / "var",
                redis_url=f"unix://{directory / 'redis' / 'redis.sock'}",
                api_clients=(ClientConfig(name="bench", api_key="bench-key-0123456789", webhook_secret=secret),),
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
                    request = body.replace('"code": "', f'"callback": "{receiver.url}", "code": "p{number}-', 1)
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
            pdf_worker = PdfWorker([Queue(name, connection=rt.redis) for name in PDF_QUEUES], connection=rt.redis)
            profiled("PDF worker", jobs, top, lambda: pdf_worker.work(burst=True, logging_level="WARNING"))
            hook_worker = PdfWorker([Queue(WEBHOOKS, connection=rt.redis)], connection=rt.redis)
            profiled("webhook worker", jobs, top, lambda: hook_worker.work(burst=True, logging_level="WARNING"))
            print(f"webhooks received: {len(receiver.arrivals)}/{jobs}")
        finally:
            receiver.stop()
            redis_process.terminate()
            redis_process.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
