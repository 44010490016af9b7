"""SSE events, the synchronous endpoint and concurrent identical submits, through the Flask app."""

from __future__ import annotations

import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from pypdf import PdfReader

from store import jobs as job_store
from tests.conftest import CLIENT_B, auth, break_job_data, run_jobs, sample_request
from tests.templates import GatedTemplate, install

SUBMIT = "/api/reports/generate-async"
SYNC = "/api/reports/generate"


def sse_events(data: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in data.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_events_stream_progress_until_complete_and_close(client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(job_watch_interval=0.01)
    gated = GatedTemplate()
    install(runtime, gated)
    job_id = client.post(SUBMIT, json=sample_request() | {"productId": "gatedReport"}, headers=auth()).json["job_id"]
    received: dict = {"chunks": []}

    def read_stream() -> None:  # opens the gate once the stream has shown the job running
        response = client.application.test_client().get(f"/api/jobs/{job_id}/events", headers=auth(),
                                                         buffered=False)
        received["response"] = response
        for chunk in response.response:
            text = chunk.decode() if isinstance(chunk, bytes) else chunk
            received["chunks"].append(text)
            if '"status": "processing"' in text and "waiting at the gate" in text:
                gated.gate.set()
        response.close()

    reader = threading.Thread(target=read_stream)
    reader.start()
    run_jobs(runtime)  # blocks at the gate until the reader has seen the job running
    reader.join(timeout=30)
    response = received["response"]
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    events = sse_events("".join(received["chunks"]).encode())
    names = [name for name, _ in events]
    assert names[-1] == "complete" and set(names[:-1]) == {"progress"}
    progress = [data["progress"] for _, data in events]
    assert progress == sorted(progress) and progress[-1] == 100
    assert any(data["status"] == "processing" and 0 < data["progress"] < 100 for _, data in events)


def test_events_of_unknown_or_foreign_job_are_404(client) -> None:
    job_id = client.post(SUBMIT, json=sample_request(), headers=auth()).json["job_id"]
    assert client.get(f"/api/jobs/{job_id}/events", headers=auth(CLIENT_B)).status_code == 404
    assert client.get("/api/jobs/pdf_nope/events", headers=auth()).status_code == 404
    assert client.get(f"/api/jobs/{job_id}/events").status_code == 401


def sync_request_in_background(client, runtime):  # noqa: ANN001, ANN201
    """POST the sync endpoint from a thread; returns (thread, answers, job_id) once the job is in SQL."""
    answers: dict = {}
    waiting = threading.Thread(
        target=lambda: answers.update(response=client.application.test_client().post(
            SYNC, json=sample_request(), headers=auth())))
    waiting.start()
    deadline = time.monotonic() + 30
    with runtime.session() as session:
        while not (jobs := job_store.list_jobs(session, client_name="acme")) and time.monotonic() < deadline:
            session.expire_all()
    (job,) = jobs
    return waiting, answers, job.job_id


def test_sync_generate_answers_with_the_pdf(client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(job_watch_interval=0.02)
    waiting, answers, _ = sync_request_in_background(client, runtime)
    run_jobs(runtime)
    waiting.join(timeout=30)
    response = answers["response"]
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert sample_request()["code"] in PdfReader(io.BytesIO(response.data)).pages[0].extract_text()


def test_sync_generate_answers_202_with_the_job_after_sync_timeout(client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(sync_timeout=1, job_watch_interval=0.1)
    response = client.post(SYNC, json=sample_request(), headers=auth())
    assert response.status_code == 202
    assert response.json["status"] == "queued" and response.headers["Location"] == response.json["status_url"]


def test_sync_generate_reports_a_failed_job(client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(job_watch_interval=0.02)
    waiting, answers, job_id = sync_request_in_background(client, runtime)
    break_job_data(runtime.session, job_id)  # fails at once in the worker
    run_jobs(runtime)
    waiting.join(timeout=30)
    response = answers["response"]
    assert response.status_code == 422 and response.json["error"] == "job_failed"
    assert "scales" in response.json["message"]


def test_sync_generate_validates_like_the_async_endpoint(client) -> None:
    response = client.post(SYNC, json={"productId": "minatBakatUmum"}, headers=auth())
    assert response.status_code == 400 and response.json["details"][0]["field"] == "code"


def concurrent_submits(client, count: int, headers: dict) -> list:
    def one(_: int):
        return client.application.test_client().post(SUBMIT, json=sample_request(), headers=headers)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_twenty_concurrent_identical_submits_make_one_job(client, runtime) -> None:
    responses = concurrent_submits(client, 20, auth())
    assert sorted(response.status_code for response in responses) == [200] * 19 + [202]
    assert len({response.json["job_id"] for response in responses}) == 1
    with runtime.session() as session:
        assert len(job_store.list_jobs(session, client_name=None)) == 1
    assert runtime.redis.llen("rq:queue:normal") == 1


def test_twenty_concurrent_submits_with_one_idempotency_key_make_one_job(client, runtime) -> None:
    responses = concurrent_submits(client, 20, auth() | {"Idempotency-Key": "order-42"})
    assert sorted(response.status_code for response in responses) == [200] * 19 + [202]
    assert len({response.json["job_id"] for response in responses}) == 1
    with runtime.session() as session:
        assert len(job_store.list_jobs(session, client_name=None)) == 1
