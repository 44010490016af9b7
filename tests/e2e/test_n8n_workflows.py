"""The shipped n8n workflows in a real n8n (tests/e2e/n8n.py) against the real service, set up as docs/n8n.md
says. `submit-and-wait.json`: the service's own callback resumes it and it downloads the PDF; a forged resume
(with or without n8n's resume signature) and a replayed genuine webhook of another job are refused, the
execution waits on, and no request goes to the URL the forger named. `webhook-listeners.json`: the service's
webhook is accepted, a forged one answered 401, a redelivery marked as a duplicate. Skips where n8n is not
installed (`make n8n`)."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.callbacks.receiver import Receiver
from tests.conftest import CLIENT_A, sample_request
from tests.e2e.conftest import Api, poll
from tests.e2e.n8n import INSTALL_DIR, N8N_VERSION, N8n, installed

pytestmark = [
    pytest.mark.sqlite_only,  # the subject is the workflow, not SQL
    pytest.mark.skipif(not installed(), reason=f"n8n is not installed in {INSTALL_DIR}: `make n8n` installs "
                                               f"n8n {N8N_VERSION} (a few minutes, 2.8 GB)"),
]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "n8n"
WORKFLOW_ID = "pdfSubmitAndWait"
LISTENERS_ID = "pdfWebhookListeners"
OVER = ("success", "error", "crashed", "canceled")
SECRET_PLACEHOLDER = "whsec_REPLACE_WITH_YOUR_CLIENT_WEBHOOK_SECRET"


def configured_workflow(api_base_url: str, webhook_secret: str) -> dict:
    """The shipped workflow set up as docs/n8n.md says: apiBaseUrl, the client's SECRET and the report's data."""
    return edited("submit-and-wait.json", WORKFLOW_ID, (
        ("PDF service settings", "https://pdf.example.com", api_base_url),
        ("Check PDF callback", SECRET_PLACEHOLDER, webhook_secret),
        ("Report request", "data: null", "data: " + json.dumps(sample_request()["data"])),
    ))


def configured_listeners(webhook_secret: str) -> dict:
    """The shipped listeners with the client's SECRET pasted into both Code nodes."""
    return edited("webhook-listeners.json", LISTENERS_ID, (
        ("Verify signature (complete)", SECRET_PLACEHOLDER, webhook_secret),
        ("Verify signature (failed)", SECRET_PLACEHOLDER, webhook_secret),
    ))


def edited(file: str, workflow_id: str, edits: tuple[tuple[str, str, str], ...]) -> dict:
    """A shipped workflow with, per (node, old, new), `old` replaced by `new` in that Code node; given `workflow_id`."""
    workflow = json.loads((EXAMPLES / file).read_text())
    nodes = {node["name"]: node["parameters"] for node in workflow["nodes"]}
    for name, old, new in edits:
        assert old in nodes[name]["jsCode"], f"{name} no longer holds {old!r}: update this test's set-up"
        nodes[name]["jsCode"] = nodes[name]["jsCode"].replace(old, new)
    return workflow | {"id": workflow_id}


@pytest.fixture(scope="module")
def n8n(tmp_path_factory: pytest.TempPathFactory, service) -> N8n:  # noqa: ANN001
    """A real n8n with both workflows and the `PDF service API key` credential imported, the listeners published
    (n8n registers the Webhook nodes of published workflows when it starts)."""
    instance = N8n(tmp_path_factory.mktemp("n8n"))
    instance.import_json("credentials", [{
        "id": "pdfServiceApiKey", "name": "PDF service API key", "type": "httpHeaderAuth",
        "data": {"name": "Authorization", "value": f"Bearer {CLIENT_A.api_key}"},
    }])
    instance.import_json("workflow", [configured_workflow(service.base_url, CLIENT_A.webhook_secret),
                                      configured_listeners(CLIENT_A.webhook_secret)])
    instance.command("publish:workflow", f"--id={LISTENERS_ID}")
    try:
        yield instance.start()
    finally:
        instance.stop()


def started(n8n: N8n) -> tuple[int, str, str]:
    """Execute the workflow until its Wait node: (execution id, the job it submitted, its resume URL)."""
    stored = n8n.execute(WORKFLOW_ID)
    assert stored["status"] == "waiting", stored
    runs = stored["data"]["resultData"]["runData"]
    job_id = runs["Submit PDF job"][0]["data"]["main"][0][0]["json"]["job_id"]
    resume_url = runs["Wait for PDF webhook"][0]["metadata"]["resumeUrl"]
    return int(urlsplit(resume_url).path.rsplit("/", 1)[1]), job_id, resume_url


def verdicts(n8n: N8n, execution_id: int) -> list[dict]:
    """What `Check PDF callback` said of each call of the resume URL so far."""
    return [item["json"] for item in n8n.execution(execution_id).outputs("Check PDF callback")]


def assert_downloaded(n8n: N8n, execution_id: int, job_id: str) -> None:
    execution = n8n.wait_for(execution_id, OVER)
    assert execution.status == "success", n8n.log()[-6000:]
    [pdf] = execution.outputs("Download PDF")
    assert pdf["binary"]["data"]["mimeType"] == "application/pdf"
    assert verdicts(n8n, execution_id)[-1] | {"webhookId": None} == {
        "verdict": "completed", "jobId": job_id, "status": "completed", "error": None, "webhookId": None}


def test_the_services_callback_resumes_the_execution_which_downloads_the_pdf(n8n: N8n, api: Api) -> None:
    execution_id, job_id, resume_url = started(n8n)
    assert_downloaded(n8n, execution_id, job_id)
    callback = api.status(job_id)["callback"]
    assert (callback["status"], callback["last_response_code"], callback["url"]) == ("delivered", 200, resume_url)


def _header(recorded_headers: dict[str, str], name: str) -> str:
    return next(value for key, value in recorded_headers.items() if key.lower() == name)


def test_forged_and_replayed_resumes_are_refused_while_the_genuine_one_completes(
        n8n: N8n, api: Api, service, receiver: Receiver) -> None:  # noqa: ANN001
    # A genuine, signed webhook of another job of the same client: what a replayer could have captured.
    other = api.submit(sample_request() | {"callback": receiver.url("/captured")}).json()["job_id"]
    poll(lambda: receiver.requests, what=f"the webhook of {other}")
    captured = receiver.requests[0]
    service.ctl("stop", "pdf_worker:*")  # the job waits in its queue while its resume URL is attacked
    try:
        execution_id, job_id, resume_url = started(n8n)
        forged = {"job_id": job_id, "status": "completed", "download_url": receiver.url("/evil.pdf"),
                  "file_name": "evil.pdf", "error": None}
        # Without n8n's own resume signature (n8n >= 2.14): n8n refuses it before the workflow sees it.
        bare = requests.post(resume_url.split("?")[0], json=forged, timeout=10)
        assert bare.status_code in (401, 403), bare.text
        # With it (a leaked URL) and a made-up webhook signature: the workflow refuses it and waits again.
        fake = {"webhook-id": "msg_forged", "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1," + base64.b64encode(os.urandom(32)).decode()}
        assert requests.post(resume_url, json=forged, headers=fake, timeout=10).status_code == 200
        poll(lambda: len(verdicts(n8n, execution_id)) == 1 and n8n.execution(execution_id).status == "waiting",
             what="the forged resume refused")
        # The other job's genuine webhook, replayed byte for byte: signed by the service, but not for this job.
        replay = {name: _header(captured.headers, name)
                  for name in ("content-type", "webhook-id", "webhook-timestamp", "webhook-signature")}
        assert requests.post(resume_url, data=captured.body, headers=replay, timeout=10).status_code == 200
        poll(lambda: len(verdicts(n8n, execution_id)) == 2 and n8n.execution(execution_id).status == "waiting",
             what="the replayed resume refused")
    finally:
        service.ctl("start", "pdf_worker:*")
    assert_downloaded(n8n, execution_id, job_id)
    refused = verdicts(n8n, execution_id)[:2]
    assert [v["verdict"] for v in refused] == ["refused", "refused"]
    assert refused[0]["problem"] == "no matching v1 signature"
    assert refused[1]["problem"] == (f"the callback is for job {other}, this execution submitted {job_id} "
                                     "(a replay)")
    assert not [r for r in receiver.requests if r.path == "/evil.pdf"], "n8n followed the forged download_url"
    # The service's own webhook again (a redelivery, same webhook-id) once the execution is over: n8n answers
    # 409, the service counts it delivered, and the workflow does not run again.
    assert api.post(f"/api/jobs/{job_id}/callbacks/redeliver").status_code == 202
    callback = poll(lambda: (c := api.status(job_id)["callback"])["attempts"] == 2 and c["status"] != "pending" and c,
                    what="the redelivery")
    assert (callback["status"], callback["last_response_code"]) == ("delivered", 409)
    assert len(verdicts(n8n, execution_id)) == 3 and n8n.execution(execution_id).status == "success"


def test_the_listeners_accept_the_services_webhook_refuse_a_forged_one_and_mark_a_redelivery(
        n8n: N8n, api: Api) -> None:
    hook = f"{n8n.base_url}/webhook/pdf-complete"
    job_id = api.submit(sample_request() | {"callback": hook}).json()["job_id"]
    callback = poll(lambda: (c := api.status(job_id)["callback"])["status"] in ("delivered", "failed") and c,
                    what="the webhook")
    assert (callback["status"], callback["last_response_code"]) == ("delivered", 200), callback
    handled = poll(lambda: n8n.handled(LISTENERS_ID, "Handle completed PDF"), what="the listener's run")
    assert [(h["valid"], h["duplicate"], h["payload"]["job_id"]) for h in handled] == [(True, False, job_id)]

    forged = requests.post(hook, json={"job_id": job_id, "status": "completed"}, timeout=10, headers={
        "webhook-id": "msg_forged", "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1," + base64.b64encode(os.urandom(32)).decode()})
    assert (forged.status_code, forged.text) == (401, "no matching v1 signature")

    assert api.post(f"/api/jobs/{job_id}/callbacks/redeliver").status_code == 202
    redelivered = poll(lambda: len(found := n8n.handled(LISTENERS_ID, "Handle completed PDF")) == 2 and found,
                       what="the redelivery handled")
    assert [h["duplicate"] for h in redelivered] == [False, True]
