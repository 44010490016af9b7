"""PostgreSQL stopped mid-run (pg_ctl stop -m fast) and started again, under the real service.

While it is down, every endpoint that needs SQL answers 503 + Retry-After with the JSON error body
and /readyz answers 503; never a 500. Once it is back, every accepted job completes and its webhook
is acknowledged, and no process was restarted: the same API, worker, sender and scheduler processes
carried on by themselves.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from ops.harness import RunningService
from ops.postgres_server import LocalPostgres
from tests.callbacks.receiver import Receiver
from tests.conftest import sample_request
from tests.e2e.conftest import Api, start_service

JOBS_BEFORE = 20  # accepted just before the stop: queued, rendering or sending their webhook when it comes
OUTAGE_SECONDS = 8  # longer than the job retries (1,1,1 s): RQ gives some jobs up, the reconciler takes them back
JOBS_AFTER = 10
PROGRAMS = ("api", "pdf_worker", "webhook_worker", "scheduler")


@pytest.fixture
def outage_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL server of this test's own, to stop and start."""
    with LocalPostgres() as server:
        yield server


def submit(api: Api, receiver: Receiver, code: str) -> requests.Response:
    return api.submit(sample_request() | {"code": code, "callback": receiver.url()})


def answers_during_outage(api: Api, receiver: Receiver, job_id: str) -> list[requests.Response]:
    """Ask what clients ask (submit, status, list, readiness) for OUTAGE_SECONDS."""
    answers = []
    deadline = time.monotonic() + OUTAGE_SECONDS
    number = 0
    while time.monotonic() < deadline and number < 200:
        number += 1
        answers.append(submit(api, receiver, f"outage-{number}"))
        answers.append(api.get(f"/api/jobs/{job_id}"))
        answers.append(api.get("/api/jobs"))
        answers.append(api.get("/readyz"))
        time.sleep(0.2)
    return answers


def acknowledged_webhooks(receiver: Receiver) -> dict[str, set[str]]:
    """Webhook ids per job id that the receiver answered (200)."""
    seen: dict[str, set[str]] = {}
    for recorded in list(receiver.requests):
        seen.setdefault(json.loads(recorded.body)["job_id"], set()).add(recorded.headers["webhook-id"])
    return seen


def wait_for(predicate, timeout: float, what: str) -> float:  # noqa: ANN001
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.5)
    return time.monotonic() - started


def pids(service: RunningService) -> dict[str, list[int]]:
    return {program: sorted(service.program_pids(program)) for program in PROGRAMS}


def test_postgresql_restart_mid_run_503s_then_every_accepted_job_completes(
    tmp_path, outage_postgres: LocalPostgres, receiver: Receiver, capsys  # noqa: ANN001
) -> None:
    service = start_service(tmp_path / "var", outage_postgres.create_database("pdfjobs"),
                            WEBHOOK_RETRY_DELAYS="1,1,1,2,2,2,3,3")
    try:
        api = Api(service)
        before = pids(service)
        first = [submit(api, receiver, f"before-{i}") for i in range(JOBS_BEFORE)]
        assert [answer.status_code for answer in first] == [202] * JOBS_BEFORE
        accepted = [answer.json()["job_id"] for answer in first]
        outage_postgres.stop("fast")
        during = answers_during_outage(api, receiver, accepted[0])
        outage_postgres.start()
        after = [submit(api, receiver, f"after-{i}") for i in range(JOBS_AFTER)]
        assert [answer.status_code for answer in after] == [202] * JOBS_AFTER, [a.text for a in after]
        accepted += [answer.json()["job_id"] for answer in after]
        completed = wait_for(lambda: all(api.status(job_id)["status"] == "completed" for job_id in accepted), 180,
                             "every accepted job completed")
        acked = wait_for(lambda: set(accepted) <= set(acknowledged_webhooks(receiver)), 120,
                         "a webhook for every accepted job")
        after_pids = pids(service)
        log = service.log_path.read_text(errors="replace")
    finally:
        service.stop()
    codes = Counter((answer.request.path_url.split("?")[0].split("/")[-1], answer.status_code) for answer in during)
    with capsys.disabled():
        print(  # noqa: T201 - the figures of the run belong in the test output
            f"\ndatabase outage: {OUTAGE_SECONDS} s; answers during it {dict(codes)}; {len(accepted)} accepted jobs "
            f"completed {completed:.1f} s after the restart, webhooks +{acked:.1f} s"
        )
    assert all(answer.status_code == 503 for answer in during), [a.text for a in during if a.status_code != 503]
    for answer in during:
        assert int(answer.headers["Retry-After"]) > 0
        if answer.request.path_url != "/readyz":
            assert answer.json()["error"] == "database_unavailable", answer.text
    assert "event=unhandled_error" not in log
    assert after_pids == before, "a process was restarted"
    webhooks = acknowledged_webhooks(receiver)
    assert all(len(webhooks[job_id]) == 1 for job_id in accepted)  # one webhook id per job, however often sent
