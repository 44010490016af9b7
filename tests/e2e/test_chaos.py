"""Chaos: 300 jobs while workers are SIGKILLed, Redis is SIGKILLed once and the receiver fails 1/3.

At the end every job is completed, every PDF parses, and the receiver acknowledged exactly one
distinct, correctly signed webhook-id per job. Intervals are shortened so this runs in minutes.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from standardwebhooks.webhooks import Webhook

from ops.harness import RunningService
from store.models import JobRecord
from tests.conftest import CLIENT_A, sample_request
from tests.e2e.conftest import Api, start_service

JOBS = 300
# Kills follow progress, not the clock: a worker is SIGKILLed each time another KILL_STEP jobs have
# completed, and Redis once when REDIS_KILL_AT have. So the kills always land inside the run, however
# fast or slow the machine, and the run always moves between two kills (on a slow machine a kill
# every second kept the workers restarting and the 300 jobs took minutes).
KILL_STEP = 25
REDIS_KILL_AT = 100
POLL = 0.1


class FlakyReceiver:
    """Answers 503 to every third request, 200 to the others; records what it acknowledged."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.failed = 0
        self.acked: dict[str, set[str]] = {}  # job_id -> webhook-ids answered 200
        self.bad_signatures = 0
        verifier = Webhook(CLIENT_A.webhook_secret)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests += 1
                    fail = receiver.requests % 3 == 0
                    receiver.failed += fail
                if not fail:
                    try:
                        verifier.verify(body, dict(self.headers.items()))
                    except Exception:  # noqa: BLE001 - counted and asserted on
                        receiver.bad_signatures += 1
                    job_id = json.loads(body)["job_id"]
                    with receiver.lock:
                        receiver.acked.setdefault(job_id, set()).add(self.headers["webhook-id"])
                self.send_response(503 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhook/pdf-complete"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Chaos:
    """SIGKILLs a random running PDF worker every KILL_STEP completed jobs and Redis once, until stopped."""

    def __init__(self, service: RunningService) -> None:
        self.service = service
        self.stop_event = threading.Event()
        self.worker_kills = 0
        self.redis_kills = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        next_kill_at = KILL_STEP
        while not self.stop_event.wait(POLL):
            completed = _completed_or_none(self.service)
            if completed is None or completed >= JOBS:
                continue
            if completed >= next_kill_at and self._kill_one("pdf_worker", random.choice):
                self.worker_kills += 1
                next_kill_at = completed + KILL_STEP
            if not self.redis_kills and completed >= REDIS_KILL_AT and self._kill_one("redis", min):
                self.redis_kills += 1

    def _kill_one(self, program: str, pick) -> bool:  # noqa: ANN001
        pids = self.service.program_pids(program)
        if not pids:
            return False
        os.kill(pick(pids), signal.SIGKILL)
        return True

    def __enter__(self) -> Chaos:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join()


@pytest.fixture
def receiver():  # noqa: ANN201
    flaky = FlakyReceiver()
    yield flaky
    flaky.stop()


def count_by_status(service: RunningService) -> dict[str, int]:
    with service.session_factory()() as session:
        return dict(session.execute(select(JobRecord.status, func.count()).group_by(JobRecord.status)).all())


def _completed_or_none(service: RunningService) -> int | None:
    try:
        return count_by_status(service).get("completed", 0)
    except OperationalError:  # SQLite busy for longer than the timeout: ask again at the next poll
        return None


def describe_unfinished(service: RunningService) -> str:
    """Each job not completed yet: SQL status and attempts, RQ status, and on which Redis list it sits."""
    client = service.redis()
    lists = {key.decode(): set(client.lrange(key, 0, -1)) for key in client.keys("rq:queue:*")
             if client.type(key) == b"list"}
    lines = []
    with service.session_factory()() as session:
        for job_id, status, attempts in session.execute(
                select(JobRecord.job_id, JobRecord.status, JobRecord.attempts).where(JobRecord.status != "completed")):
            rq_status = client.hget(f"rq:job:{job_id}", "status")
            on = [name for name, members in lists.items() if job_id.encode() in members]
            lines.append(f"{job_id} sql={status} attempts={attempts} rq={rq_status} lists={on}")
    return "\n".join(lines[:20])


def wait_until(predicate, timeout: float, what: str, describe=lambda: "") -> float:  # noqa: ANN001
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{describe()}")


def test_chaos_300_jobs_complete_with_one_acknowledged_webhook_each(tmp_path, receiver, capsys) -> None:
    service = start_service(
        tmp_path / "var", WORKERS="2", WEBHOOK_WORKERS="2", MAX_QUEUE_SIZE="1000",
        STALE_JOB_GRACE="3", RECONCILE_INTERVAL="1", JOB_RETRY_DELAYS="1,1,1,1,1",
        WEBHOOK_RETRY_DELAYS="1,1,1,2,2,2,3,3", LOG_LEVEL="WARNING",
    )
    api = Api(service)
    started = time.monotonic()
    try:
        with Chaos(service) as chaos:
            with ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(
                    lambda i: api.submit(sample_request() | {"code": f"chaos-{i}", "callback": receiver.url}),
                    range(JOBS),
                ))
            assert [a.status_code for a in answers].count(202) == JOBS
            ids = [a.json()["job_id"] for a in answers]
            finished = wait_until(lambda: count_by_status(service).get("completed", 0) == JOBS, 240,
                                  "every job completed",
                                  lambda: f"{count_by_status(service)}\n{describe_unfinished(service)}")
        acked = wait_until(lambda: len(receiver.acked) == JOBS, 120, "a webhook acknowledged for every job")
        statuses = count_by_status(service)
        pdfs_ok = sum(_pdf_parses(api, job_id) for job_id in ids)
        with service.session_factory()() as session:
            retried = session.scalar(select(func.count()).where(JobRecord.attempts > 1))
    finally:
        service.stop()
    distinct_ids = {webhook_id for ids_ in receiver.acked.values() for webhook_id in ids_}
    with capsys.disabled():
        print(  # noqa: T201 - the figures of the run belong in the test output
            f"\nchaos: {JOBS} jobs, {chaos.worker_kills} worker SIGKILLs, {chaos.redis_kills} Redis SIGKILL; "
            f"all completed after {finished:.1f} s (total {time.monotonic() - started:.1f} s), webhooks acked "
            f"+{acked:.1f} s; jobs run more than once: {retried}; receiver requests {receiver.requests}, "
            f"answered 503: {receiver.failed}; distinct webhook-ids acked: {len(distinct_ids)}; PDFs parsed: {pdfs_ok}"
        )
    assert statuses == {"completed": JOBS}
    assert pdfs_ok == JOBS
    assert chaos.worker_kills >= 3 and chaos.redis_kills == 1
    assert len(distinct_ids) == JOBS
    assert all(len(ids_) == 1 for ids_ in receiver.acked.values())
    assert receiver.bad_signatures == 0


def _pdf_parses(api: Api, job_id: str) -> bool:
    response = api.get(f"/api/jobs/{job_id}/download")
    if response.status_code != 200:
        return False
    return len(PdfReader(io.BytesIO(response.content)).pages) >= 2
