"""Job control end to end: gunicorn (gevent) API, real RQ workers, scheduler and Redis under supervisord."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from pypdf import PdfReader
from rq import Queue, Worker
from rq.job import Job

from ops.harness import RunningService
from store import jobs as job_store
from store.models import utcnow
from tests.conftest import auth, break_job_data, sample_request
from tests.e2e.conftest import Api, poll, start_service
from tests.e2e.slow_form import DATA, PRODUCT_ID, write_slow_form


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, service_database: str | None) -> Iterator[RunningService]:
    """The service with the large test form in TEMPLATES_DIR and a short SYNC_TIMEOUT."""
    templates = write_slow_form(tmp_path_factory.mktemp("templates"))
    running = start_service(tmp_path_factory.mktemp("control") / "var", service_database, TEMPLATES_DIR=str(templates),
                            SYNC_TIMEOUT="3", JOB_WATCH_INTERVAL="0.1")
    yield running
    running.stop()


def quick(code: str, **changes) -> dict:
    return sample_request() | {"code": code} | changes


def slow(code: str) -> dict:
    return {"code": code, "productId": PRODUCT_ID, "data": DATA}


def accepted(response: requests.Response) -> str:
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def row(service: RunningService, job_id: str):
    with service.session_factory()() as session:
        return job_store.get_job(session, job_id)


class WorkersStopped:
    """Stop the PDF workers for the duration of a block (jobs then wait in their queues)."""

    def __init__(self, service: RunningService):
        self.service = service

    def __enter__(self) -> None:
        self.service.ctl("stop", "pdf_worker:*")

    def __exit__(self, *exc: object) -> None:
        self.service.ctl("start", "pdf_worker:*")
        queue = Queue("high", connection=self.service.redis())
        expected = self.service.settings.workers
        poll(lambda: len(Worker.all(queue=queue)) == expected, what=f"{expected} workers registered again")


@pytest.mark.sqlite_only
def test_e2e_position_counts_higher_queues_while_workers_are_stopped(api: Api, service: RunningService) -> None:
    with WorkersStopped(service):
        normal = [accepted(api.submit(quick(f"pos-n{i}"))) for i in range(3)]
        high = accepted(api.submit(quick("pos-h", priority="high")))
        assert api.status(high)["position_in_queue"] == 0
        assert [api.status(job_id)["position_in_queue"] for job_id in normal] == [1, 2, 3]
        assert api.status(high)["estimated_completion"] is None  # no live worker: no honest estimate
    for job_id in [*normal, high]:
        assert api.wait_for(job_id)["status"] == "completed"


@pytest.mark.sqlite_only
def test_e2e_cancel_queued_job_never_runs(api: Api, service: RunningService) -> None:
    with WorkersStopped(service):
        job_id = accepted(api.submit(quick("cancel-queued")))
        response = api.post(f"/api/jobs/{job_id}/cancel")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        assert job_id.encode() not in service.redis().lrange("rq:queue:normal", 0, -1)
    marker = accepted(api.submit(quick("after-cancel-queued")))
    assert api.wait_for(marker)["status"] == "completed"
    job = row(service, job_id)
    assert job.status == "cancelled" and job.started_at is None


@pytest.mark.sqlite_only
def test_e2e_scheduled_job_waits_until_due_then_runs(api: Api) -> None:
    run_at = utcnow() + timedelta(seconds=2)
    job_id = accepted(api.submit(quick("scheduled", runAt=run_at.isoformat())))
    body = api.status(job_id)
    assert body["status"] == "scheduled" and body["position_in_queue"] is None
    done = api.wait_for(job_id)
    assert done["status"] == "completed" and done["started_at"] >= run_at.isoformat()[:19]
    past = api.submit(quick("past-run-at", runAt=(utcnow() - timedelta(hours=1)).isoformat()))
    assert accepted(past) and past.json()["status"] == "queued"
    assert api.wait_for(past.json()["job_id"])["status"] == "completed"


@pytest.mark.sqlite_only
def test_e2e_cancel_scheduled_job_never_runs(api: Api, service: RunningService) -> None:
    soon = utcnow() + timedelta(seconds=2)
    cancelled = accepted(api.submit(quick("sched-cancel", runAt=soon.isoformat())))
    later = accepted(api.submit(quick("sched-keep", runAt=(soon + timedelta(seconds=1)).isoformat())))
    assert api.post(f"/api/jobs/{cancelled}/cancel").json()["status"] == "cancelled"
    assert api.wait_for(later)["status"] == "completed"  # the scheduler has passed the cancelled one's time
    job = row(service, cancelled)
    assert job.status == "cancelled" and job.started_at is None


@pytest.mark.sqlite_only
def test_e2e_cancel_running_job_stops_it_and_serves_no_file(api: Api, service: RunningService) -> None:
    job_id = accepted(api.submit(slow("cancel-running")))
    api.wait_for(job_id, states=("processing",))
    response = api.post(f"/api/jobs/{job_id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    rq_status = poll(lambda: Job.fetch(job_id, connection=service.redis()).get_status() == "stopped",
                     timeout=10, what="RQ job stopped")
    assert rq_status
    assert api.get(f"/api/jobs/{job_id}/download").status_code == 409
    assert list((service.data_dir / "pdfs").rglob(f"*{job_id}*")) == []
    job = row(service, job_id)
    assert job.status == "cancelled" and job.file_path is None and job.processing_ms is None


def test_e2e_retry_failed_job_to_completion(api: Api, service: RunningService) -> None:
    with WorkersStopped(service):
        job_id = accepted(api.submit(sample_request() | {"code": "retry-me"}))
        break_job_data(service.session_factory(), job_id)  # fails at once in the worker
    failed = api.wait_for(job_id)
    assert failed["status"] == "failed" and "scales" in failed["error"]
    dead = api.get("/api/jobs", params={"status": "failed", "code": "retry-me"}).json()["jobs"]
    assert [job["job_id"] for job in dead] == [job_id]
    with service.session_factory()() as session:  # the missing data has arrived upstream
        job_store.get_job(session, job_id).request_data = sample_request()["data"]
        session.commit()
    response = api.post(f"/api/jobs/{job_id}/retry")
    assert response.status_code == 202 and response.json()["job_id"] == job_id
    done = api.wait_for(job_id)
    assert done["status"] == "completed" and done["retry_count"] == failed["retry_count"]
    assert api.get(done["download_url"]).headers["Content-Type"] == "application/pdf"


def concurrent(api: Api, body: dict, headers: dict[str, str]) -> list[requests.Response]:
    def one(_: int) -> requests.Response:
        return requests.post(f"{api.base}/api/reports/generate-async", json=body, headers=auth() | headers,
                             timeout=30)

    with ThreadPoolExecutor(max_workers=20) as pool:
        return list(pool.map(one, range(20)))


def test_e2e_twenty_concurrent_identical_submits_make_one_job(api: Api, service: RunningService) -> None:
    with WorkersStopped(service):  # the first job must still be active when the last request arrives
        plain = concurrent(api, quick("race-plain"), {})
        keyed = concurrent(api, quick("race-keyed"), {"Idempotency-Key": "race-key-1"})
    for responses in (plain, keyed):
        assert sorted(response.status_code for response in responses) == [200] * 19 + [202]
        assert len({response.json()["job_id"] for response in responses}) == 1
    with service.session_factory()() as session:
        for code in ("race-plain", "race-keyed"):
            assert len(job_store.list_jobs(session, client_name="acme", code=code)) == 1


def read_events(api: Api, job_id: str) -> list[tuple[str, dict, datetime]]:
    events, name = [], None
    with api.http.get(f"{api.base}/api/jobs/{job_id}/events", headers=api.headers, stream=True,
                      timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for line in response.iter_lines(decode_unicode=True):  # ends when the server closes the stream
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: ")), utcnow()))
    return events


@pytest.mark.sqlite_only
def test_e2e_sse_stream_delivers_progress_in_order_and_closes(api: Api, service: RunningService) -> None:
    job_id = accepted(api.submit(slow("sse")))
    events = read_events(api, job_id)
    names = [name for name, _, _ in events]
    assert names[-1] == "complete" and set(names[:-1]) == {"progress"}
    progress = [data["progress"] for _, data, _ in events]
    assert progress == sorted(progress) and progress[-1] == 100
    running = [received for _, data, received in events if data["status"] == "processing" and data["progress"]]
    assert running, events
    assert all({"status", "phase", "progress", "message"} <= set(data) for _, data, _ in events)
    assert min(running) < row(service, job_id).completed_at  # streamed live, not buffered until the end


@pytest.mark.sqlite_only
def test_e2e_sync_returns_pdf_for_quick_job_and_202_when_it_takes_longer(api: Api, service: RunningService) -> None:
    response = api.post("/api/reports/generate", json=quick("sync-quick"))
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/pdf"
    assert len(PdfReader(io.BytesIO(response.content)).pages) >= 2
    with WorkersStopped(service):  # nothing runs it within SYNC_TIMEOUT=3
        late = api.post("/api/reports/generate", json=quick("sync-late"))
    assert late.status_code == 202 and late.headers["Location"] == late.json()["status_url"]
    assert api.wait_for(late.json()["job_id"])["status"] == "completed"


def alerts(api: Api) -> set[str]:
    return {alert["name"] for alert in api.get("/api/queue/stats").json()["alerts"]}


def test_e2e_stats_and_alerts_change_as_jobs_fail(api: Api, service: RunningService) -> None:
    before = api.get("/api/queue/stats").json()
    assert before["workers"]["total"] == 2
    with WorkersStopped(service):
        failing = [accepted(api.submit(sample_request() | {"code": f"stats-fail-{i}"})) for i in range(2)]
        for job_id in failing:
            break_job_data(service.session_factory(), job_id)
    for job_id in failing:
        assert api.wait_for(job_id)["status"] == "failed"
    after = api.get("/api/queue/stats").json()
    assert after["last_hour"]["failed"] == before["last_hour"]["failed"] + 2
    assert after["last_hour"]["failure_rate"] > before["last_hour"]["failure_rate"]
    assert "failure_rate" in alerts(api)
    with WorkersStopped(service):
        assert poll(lambda: "no_workers" in alerts(api), what="no_workers alert")
    assert poll(lambda: "no_workers" not in alerts(api), what="workers back")


def scrape(api: Api) -> dict[str, float]:
    text = requests.get(f"{api.base}/metrics", timeout=10).text
    return {
        f"{sample.name}{sorted(sample.labels.items())}": sample.value
        for family in text_string_to_metric_families(text) for sample in family.samples
    }


def test_e2e_metrics_agree_across_api_processes_and_with_sql(api: Api, service: RunningService) -> None:
    job_id = accepted(api.submit(quick("metrics")))
    api.wait_for(job_id)
    scrapes = [scrape(api) for _ in range(6)]  # spread over both gunicorn processes
    assert all(values == scrapes[0] for values in scrapes)
    values = scrapes[0]
    with service.session_factory()() as session:
        completed = job_store.list_jobs(session, client_name=None, status="completed", product_id="minatBakatUmum",
                                        limit=10_000)
    assert values["pdfjobs_jobs_completed_total[('priority', 'normal'), ('product', 'minatBakatUmum')]"] == len(
        [job for job in completed if job.priority == "normal"])
    assert values["pdfjobs_workers[('state', 'busy')]"] + values["pdfjobs_workers[('state', 'idle')]"] == 2
    assert values["pdfjobs_redis_up[]"] == 1


def test_e2e_list_pages_openapi_and_docs(api: Api) -> None:
    first = api.get("/api/jobs", params={"status": "completed", "limit": 2}).json()
    assert len(first["jobs"]) == 2 and first["next_cursor"]
    second = api.get("/api/jobs", params={"status": "completed", "limit": 2, "cursor": first["next_cursor"]}).json()
    assert {job["job_id"] for job in first["jobs"]}.isdisjoint(job["job_id"] for job in second["jobs"])
    assert "/api/jobs/{job_id}/events" in requests.get(f"{api.base}/api/openapi.json", timeout=10).json()["paths"]
    assert "swagger-ui-bundle.js" in requests.get(f"{api.base}/api/docs", timeout=10).text
    assert requests.get(f"{api.base}/api/docs/swagger-ui-bundle.js", timeout=10).status_code == 200
