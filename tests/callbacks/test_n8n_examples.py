"""The n8n example workflows: their shape, and their Code nodes run in Node.js against signed, forged and
replayed webhooks."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from callbacks import signing
from tests.callbacks.n8n_code import (
    PLACEHOLDER,
    call,
    code_of,
    needs_node,
    nodes,
    run_code,
    webhook_item,
    workflow,
)
from tests.conftest import CLIENT_A, CLIENT_B, EXAMPLES

WAIT = "submit-and-wait.json"
CHECK = "Check PDF callback"
SUBMITTED = {"job_id": "pdf_1", "status": "queued", "status_url": "/api/jobs/pdf_1"}  # the submit's answer


def _targets(flow: dict[str, Any], source: str) -> list[list[str]]:
    return [[link["node"] for link in branch] for branch in flow["connections"][source]["main"]]


@pytest.mark.parametrize("name", [WAIT, "webhook-listeners.json", "batch-from-sheet.json"])
def test_n8n_workflow_connections_name_real_nodes(name: str) -> None:
    flow = workflow(name)
    by_name = nodes(flow)
    assert len(by_name) == len(flow["nodes"])
    for source, outputs in flow["connections"].items():
        assert source in by_name
        assert all(link["node"] in by_name for branch in outputs["main"] for link in branch)
    assert all(node["type"].startswith("n8n-nodes-base.") and node["typeVersion"] for node in by_name.values())


def test_n8n_submit_and_wait_resumes_on_post_and_checks_the_callback_first() -> None:
    flow = workflow(WAIT)
    by_name = nodes(flow)
    submit, wait = by_name["Submit PDF job"]["parameters"], by_name["Wait for PDF webhook"]
    assert submit["method"] == "POST" and submit["genericAuthType"] == "httpHeaderAuth"
    assert submit["url"] == "={{ $('PDF service settings').first().json.apiBaseUrl }}/api/reports/generate-async"
    assert "callback: $execution.resumeUrl" in submit["jsonBody"]
    assert wait["type"] == "n8n-nodes-base.wait"
    assert (wait["parameters"]["resume"], wait["parameters"]["httpMethod"]) == ("webhook", "POST")
    assert wait["parameters"]["options"]["rawBody"] is True  # the signature covers the raw bytes
    assert _targets(flow, "Submit PDF job") == [["Wait for PDF webhook"]]
    assert _targets(flow, "Wait for PDF webhook") == [[CHECK]]  # nothing reads the callback before the check
    assert _targets(flow, CHECK) == [["Callback verdict"]]
    rules = by_name["Callback verdict"]["parameters"]["rules"]["values"]
    assert [(rule["outputKey"], rule["conditions"]["conditions"][0]["rightValue"]) for rule in rules] == [
        ("completed", "completed"), ("failed", "failed"), ("refused", "refused"), ("timeout", "timeout")]
    assert all(rule["conditions"]["conditions"][0]["leftValue"] == "={{ $json.verdict }}" for rule in rules)
    # a refused call waits again for the service's own callback
    assert _targets(flow, "Callback verdict") == [
        ["Download PDF"], ["PDF job failed"], ["Wait for PDF webhook"], ["No callback in time"]]


def test_n8n_submit_and_wait_downloads_by_the_submitted_job_id_from_its_own_base_url() -> None:
    flow = workflow(WAIT)
    download = nodes(flow)["Download PDF"]["parameters"]
    assert download["url"] == ("={{ $('PDF service settings').first().json.apiBaseUrl }}/api/jobs/"
                               "{{ encodeURIComponent($('Submit PDF job').first().json.job_id) }}/download")
    assert download["options"]["response"]["response"]["responseFormat"] == "file"
    # no URL, and no node's parameter, is taken from a callback body
    assert "download_url" not in json.dumps(flow) and "$json.body" not in json.dumps(flow)
    for node in flow["nodes"]:
        if node["type"] == "n8n-nodes-base.httpRequest":
            assert node["parameters"]["url"].startswith("={{ $('PDF service settings').first().json.apiBaseUrl }}/")


@needs_node
def test_n8n_idempotency_key_is_new_for_every_execution(tmp_path: Path) -> None:
    flow = workflow(WAIT)
    header = nodes(flow)["Submit PDF job"]["parameters"]["headerParameters"]["parameters"]
    assert header == [{"name": "Idempotency-Key", "value": "={{ $('Report request').first().json.idempotencyKey }}"}]
    code = code_of(WAIT, "Report request")
    # the same workflow and execution id twice: after an n8n reset, or on a second n8n instance
    results = run_code(code, [call(), call(), call(execution_id="8")], tmp_path=tmp_path)
    keys = [result["items"][0]["idempotencyKey"] for result in results]
    assert len(set(keys)) == 3
    assert all(re.fullmatch(r"n8n-wfPdf-[78]-[0-9a-f-]{36}", key) for key in keys), keys


def _signed(body: dict[str, Any], msg_id: str, *, age: int = 0, secret: str = CLIENT_A.webhook_secret) -> dict:
    raw = json.dumps(body, separators=(",", ":")).encode()
    return webhook_item(signing.signature_headers(secret, msg_id, int(time.time()) - age, raw), raw)


COMPLETED = {"job_id": "pdf_1", "status": "completed", "code": "C1", "productId": "minatBakatUmum",
             "google_drive_link": None, "download_url": "https://pdf.example.com/api/jobs/pdf_1/download",
             "completed_at": "2026-12-07T10:00:00.000Z"}
FAILED = {"job_id": "pdf_1", "status": "failed", "code": "C1", "productId": "minatBakatUmum",
          "error": "invalid data for minatBakatUmum", "failed_at": "2026-12-07T10:00:00.000Z", "retry_count": 3}


def _check(tmp_path: Path, *calls: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the wait workflow's check with CLIENT_A's secret; each call sees the submit's answer."""
    code = code_of(WAIT, CHECK, CLIENT_A.webhook_secret)
    results = run_code(code, list(calls), node_outputs={"Submit PDF job": SUBMITTED}, tmp_path=tmp_path)
    return [result.get("items", [result])[0] for result in results]


@needs_node
def test_n8n_wait_check_accepts_the_genuine_callback(tmp_path: Path) -> None:
    completed, failed = _check(tmp_path, call(_signed(COMPLETED, "msg_a")), call(_signed(FAILED, "msg_b")))
    assert completed == {"verdict": "completed", "jobId": "pdf_1", "status": "completed", "error": None,
                         "webhookId": "msg_a"}
    assert failed["verdict"] == "failed" and failed["error"] == "invalid data for minatBakatUmum"


@needs_node
def test_n8n_wait_check_refuses_forged_resumes(tmp_path: Path) -> None:
    evil = COMPLETED | {"download_url": "https://attacker.example/fake.pdf"}
    raw = json.dumps(evil).encode()
    unsigned = webhook_item({"content-type": "application/json"}, raw)
    tampered = _signed(COMPLETED, "msg_t")
    tampered["body"] = _signed(evil, "msg_t")["body"]  # the service's signature over another body
    bad = _signed(evil, "msg_x")
    bad["headers"]["webhook-signature"] = "v1," + signing.sign(CLIENT_A.webhook_secret, "msg_y", 1, raw)[3:]
    other_client = _signed(evil, "msg_o", secret=CLIENT_B.webhook_secret)
    results = _check(tmp_path, call(unsigned), call(tampered), call(bad), call(other_client))
    assert [result["verdict"] for result in results] == ["refused"] * 4
    assert results[0]["problem"] == "missing webhook-id, webhook-timestamp or webhook-signature"
    assert {result["problem"] for result in results[1:]} == {"no matching v1 signature"}
    assert all(set(result) == {"verdict", "jobId", "problem"} for result in results)  # nothing of the body passes


@needs_node
def test_n8n_wait_check_refuses_replayed_callbacks(tmp_path: Path) -> None:
    genuine = _signed(COMPLETED, "msg_a")
    stale = _signed(COMPLETED, "msg_old", age=3600)  # a captured callback sent an hour later
    other_job = _signed(COMPLETED | {"job_id": "pdf_2"}, "msg_2")  # another execution's genuine callback
    results = _check(tmp_path, call(stale), call(other_job), call(genuine), call(genuine, execution_id="8"))
    assert [result["verdict"] for result in results] == ["refused", "refused", "completed", "refused"]
    assert "within 300 s" in results[0]["problem"]
    assert results[1]["problem"].startswith("the callback is for job pdf_2, this execution submitted pdf_1")
    assert results[3]["problem"] == "webhook-id msg_a was accepted before (a replay)"


@needs_node
def test_n8n_wait_check_after_refusals_still_takes_the_genuine_callback(tmp_path: Path) -> None:
    forged = webhook_item({"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"}, b"{}")
    results = _check(tmp_path, call(forged, run_index=0), call(forged, run_index=1),
                     call(_signed(COMPLETED, "msg_a"), run_index=2), call(forged, run_index=19))
    assert [result.get("verdict") for result in results] == ["refused", "refused", "completed", None]
    assert results[3]["error"].startswith("20 refused calls to the resume URL of PDF job pdf_1")


@needs_node
def test_n8n_wait_check_tells_a_timeout_and_a_setup_mistake_apart(tmp_path: Path) -> None:
    timed_out = {"json": {"verdict": "refused", "jobId": "pdf_1", "problem": "..."}}  # the Wait node's own input
    no_raw_body = webhook_item(_signed(COMPLETED, "msg_a")["headers"], None)
    timeout, mistake = _check(tmp_path, call(timed_out), call(no_raw_body))
    assert timeout["verdict"] == "timeout" and timeout["jobId"] == "pdf_1"
    assert "Raw Body" in mistake["error"]
    unset = run_code(code_of(WAIT, CHECK), [call(_signed(COMPLETED, "msg_a"))],
                     node_outputs={"Submit PDF job": SUBMITTED}, tmp_path=tmp_path)
    assert "Paste the client's webhook_secret into SECRET" in unset[0]["error"]


def test_n8n_listeners_take_raw_body_and_verify() -> None:
    flow = workflow("webhook-listeners.json")
    by_name = nodes(flow)
    hooks = [node for node in by_name.values() if node["type"] == "n8n-nodes-base.webhook"]
    assert sorted(hook["parameters"]["path"] for hook in hooks) == ["pdf-complete", "pdf-failed"]
    for hook in hooks:
        assert hook["parameters"]["httpMethod"] == "POST" and hook["parameters"]["options"]["rawBody"] is True
        [[check]] = _targets(flow, hook["name"])
        assert by_name[check]["type"] == "n8n-nodes-base.code"
        assert "require('crypto')" in by_name[check]["parameters"]["jsCode"]


def _verification_code() -> str:
    code = code_of("webhook-listeners.json", "Verify signature (complete)")
    assert code == code_of("webhook-listeners.json", "Verify signature (failed)")
    assert PLACEHOLDER in code
    return code.replace(PLACEHOLDER, CLIENT_A.webhook_secret)


def _problem_with(code: str) -> str:
    return code[code.index("function problemWith"):code.index("\n}\n", code.index("function problemWith")) + 3]


def test_n8n_docs_show_the_code_of_the_workflows() -> None:
    docs = (EXAMPLES.parent / "docs" / "n8n.md").read_text()
    snippets = [block.split("```", 1)[0] for block in docs.split("```js\n")[1:]]
    assert code_of("webhook-listeners.json", "Verify signature (complete)") in snippets
    assert code_of(WAIT, CHECK) in snippets
    # both workflows check signatures with the same function
    assert _problem_with(code_of(WAIT, CHECK)) == _problem_with(_verification_code())


@needs_node
def test_n8n_code_node_snippet_verifies_signatures(tmp_path: Path) -> None:
    body = json.dumps({"job_id": "pdf_1", "status": "completed", "code": "Ä-1"}, ensure_ascii=False).encode()
    now = int(time.time())
    good = webhook_item(signing.signature_headers(CLIENT_A.webhook_secret, "msg_a", now, body), body)
    flipped = {**good, "body": webhook_item({}, body.replace(b"pdf_1", b"pdf_2"))["body"]}
    stale = webhook_item(signing.signature_headers(CLIENT_A.webhook_secret, "msg_b", now - 3600, body), body)
    other = webhook_item(signing.signature_headers(CLIENT_A.webhook_secret, "msg_c", now, body), body)
    other["headers"]["webhook-signature"] = "v1," + "eHh4" * 11
    [result] = run_code(_verification_code(), [call(good, good, flipped, stale, other)], tmp_path=tmp_path)
    results = result["items"]
    assert [(r["valid"], r["duplicate"]) for r in results] == [
        (True, False), (True, True), (False, False), (False, False), (False, False),
    ]
    assert results[0]["payload"] == json.loads(body) and results[0]["webhookId"] == "msg_a"
    assert results[2]["problem"] == "no matching v1 signature" and "within 300 s" in results[3]["problem"]
