"""An n8n resume URL through the whole service (submit, SQL, worker, webhook sender, a real receiver):
sent back with its query byte for byte, and the service's own callback accepted by the workflow's check
while a forged or replayed one is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.callbacks.n8n_code import call, code_of, needs_node, run_code, webhook_item
from tests.callbacks.receiver import Receiver
from tests.conftest import CLIENT_A, auth, run_jobs, sample_request
from tests.workers.webhook_support import run_webhooks

TOKEN = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # n8n 2.14+: 64 hex characters
RESUME_PATHS = [
    f"/webhook-waiting/41?signature={TOKEN}",  # a Wait node's $execution.resumeUrl
    f"/webhook-waiting/42/6e1c3b0a-4f7e-4d2a-9d51-1f0f8a1c2b3d?approved=true&signature={TOKEN}",  # send and wait
    "/webhook-waiting/43?signature=AbC%2B%2F%3D&x=1&x=2&empty=",  # escapes, repeated and empty parameters
]


def _resume(client, runtime, receiver: Receiver, path: str) -> dict:  # noqa: ANN001
    """Submit with the receiver's resume URL as callback, run the job and send its webhook; the submit's answer."""
    body = sample_request() | {"callback": receiver.url(path)}
    answer = client.post("/api/reports/generate-async", json=body, headers=auth())
    assert answer.status_code == 202, answer.json
    run_jobs(runtime)
    run_webhooks(runtime)
    return answer.json


@pytest.mark.parametrize("path", RESUME_PATHS)
def test_callback_is_sent_to_the_resume_url_byte_for_byte(client, runtime, receiver: Receiver, path: str) -> None:
    _resume(client, runtime, receiver, path)
    [seen] = receiver.requests
    assert seen.method == "POST" and seen.path == path


@needs_node
def test_n8n_check_takes_the_services_callback_and_refuses_forged_and_replayed_ones(
    client, runtime, receiver: Receiver, tmp_path: Path
) -> None:
    submitted = _resume(client, runtime, receiver, RESUME_PATHS[0])
    [sent] = receiver.requests
    headers = {name.lower(): value for name, value in sent.headers.items()}  # as n8n's Node server has them
    genuine = webhook_item(headers, sent.body)
    body = json.loads(sent.body)
    assert body["status"] == "completed"
    forged = webhook_item(headers, json.dumps(body | {"download_url": "https://attacker.example/x.pdf"}).encode())
    code = code_of("submit-and-wait.json", "Check PDF callback", CLIENT_A.webhook_secret)
    results = run_code(code, [call(forged), call(genuine), call(genuine)],
                       node_outputs={"Submit PDF job": submitted}, tmp_path=tmp_path)
    verdicts = [result["items"][0] for result in results]
    assert [v["verdict"] for v in verdicts] == ["refused", "completed", "refused"]
    assert verdicts[1] == {"verdict": "completed", "jobId": submitted["job_id"], "status": "completed",
                           "error": None, "webhookId": headers["webhook-id"]}
    assert verdicts[2]["problem"].endswith("was accepted before (a replay)")
