"""The n8n example workflows: their shape, and the Code-node verification snippet run in Node.js."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from callbacks import signing
from tests.conftest import CLIENT_A, EXAMPLES

N8N = EXAMPLES / "n8n"
PLACEHOLDER = "whsec_REPLACE_WITH_YOUR_CLIENT_WEBHOOK_SECRET"

# Runs a Code node's JavaScript the way n8n does: an async function body with `$input`,
# `$getWorkflowStaticData` and `require` in scope and `this.helpers.getBinaryDataBuffer`.
HARNESS = """
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const run = new AsyncFunction('$input', '$getWorkflowStaticData', 'require', input.code);
const items = input.items.map((item) => ({ json: { headers: item.headers } }));
const staticData = {};
const context = { helpers: { getBinaryDataBuffer: async (i, name) => Buffer.from(input.items[i].body, 'base64') } };
run.call(context, { all: () => items }, () => staticData, require)
  .then((result) => process.stdout.write(JSON.stringify(result)));
"""


def _workflow(name: str) -> dict[str, Any]:
    return json.loads((N8N / name).read_text())


def _nodes(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["name"]: node for node in workflow["nodes"]}


def _targets(workflow: dict[str, Any], source: str) -> list[list[str]]:
    return [[link["node"] for link in branch] for branch in workflow["connections"][source]["main"]]


@pytest.mark.parametrize("name", ["submit-and-wait.json", "webhook-listeners.json", "batch-from-sheet.json"])
def test_n8n_workflow_connections_name_real_nodes(name: str) -> None:
    workflow = _workflow(name)
    nodes = _nodes(workflow)
    assert len(nodes) == len(workflow["nodes"])
    for source, outputs in workflow["connections"].items():
        assert source in nodes
        assert all(link["node"] in nodes for branch in outputs["main"] for link in branch)
    assert all(node["type"].startswith("n8n-nodes-base.") and node["typeVersion"] for node in nodes.values())


def test_n8n_submit_and_wait_resumes_on_post() -> None:
    workflow = _workflow("submit-and-wait.json")
    nodes = _nodes(workflow)
    submit, wait = nodes["Submit PDF job"], nodes["Wait for PDF webhook"]
    assert submit["parameters"]["method"] == "POST" and submit["parameters"]["url"].endswith("/generate-async")
    assert "callback: $execution.resumeUrl" in submit["parameters"]["jsonBody"]
    assert submit["parameters"]["genericAuthType"] == "httpHeaderAuth"
    assert wait["type"] == "n8n-nodes-base.wait"
    assert (wait["parameters"]["resume"], wait["parameters"]["httpMethod"]) == ("webhook", "POST")
    assert _targets(workflow, "Submit PDF job") == [["Wait for PDF webhook"]]
    assert _targets(workflow, "Completed?") == [["Download PDF"], ["PDF job failed"]]
    download = nodes["Download PDF"]["parameters"]
    assert download["url"] == "={{ $json.body.download_url }}"
    assert download["options"]["response"]["response"]["responseFormat"] == "file"


def test_n8n_listeners_take_raw_body_and_verify() -> None:
    workflow = _workflow("webhook-listeners.json")
    nodes = _nodes(workflow)
    hooks = [node for node in nodes.values() if node["type"] == "n8n-nodes-base.webhook"]
    assert sorted(hook["parameters"]["path"] for hook in hooks) == ["pdf-complete", "pdf-failed"]
    for hook in hooks:
        assert hook["parameters"]["httpMethod"] == "POST" and hook["parameters"]["options"]["rawBody"] is True
        [[check]] = _targets(workflow, hook["name"])
        assert nodes[check]["type"] == "n8n-nodes-base.code"
        assert "require('crypto')" in nodes[check]["parameters"]["jsCode"]


def _verification_code() -> str:
    nodes = _nodes(_workflow("webhook-listeners.json"))
    code = nodes["Verify signature (complete)"]["parameters"]["jsCode"]
    assert code == nodes["Verify signature (failed)"]["parameters"]["jsCode"]
    assert PLACEHOLDER in code
    return code.replace(PLACEHOLDER, CLIENT_A.webhook_secret)


def test_n8n_docs_show_the_snippet_of_the_workflow() -> None:
    docs = (EXAMPLES.parent / "docs" / "n8n.md").read_text()
    snippet = docs.split("```js\n", 1)[1].split("```", 1)[0]
    assert snippet == _nodes(_workflow("webhook-listeners.json"))["Verify signature (complete)"]["parameters"]["jsCode"]


def _signed(body: bytes, msg_id: str, timestamp: int) -> dict[str, Any]:
    headers = signing.signature_headers(CLIENT_A.webhook_secret, msg_id, timestamp, body)
    return {"headers": headers, "body": base64.b64encode(body).decode()}


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the Code-node snippet")
def test_n8n_code_node_snippet_verifies_signatures(tmp_path: Path) -> None:
    body = json.dumps({"job_id": "pdf_1", "status": "completed", "code": "Ä-1"}, ensure_ascii=False).encode()
    now = int(time.time())
    good = _signed(body, "msg_a", now)
    flipped = {**good, "body": base64.b64encode(body.replace(b"pdf_1", b"pdf_2")).decode()}
    stale = _signed(body, "msg_b", now - 3600)
    other = _signed(body, "msg_c", now)
    other["headers"]["webhook-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
    items = [good, good, flipped, stale, other]
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS)
    payload = json.dumps({"code": _verification_code(), "items": items})
    completed = subprocess.run(["node", str(harness)], input=payload, capture_output=True, text=True, timeout=30)
    assert completed.returncode == 0, completed.stderr
    results = [item["json"] for item in json.loads(completed.stdout)]
    assert [(r["valid"], r["duplicate"]) for r in results] == [
        (True, False), (True, True), (False, False), (False, False), (False, False),
    ]
    assert results[0]["payload"] == json.loads(body) and results[0]["webhookId"] == "msg_a"
    assert results[2]["problem"] == "no matching v1 signature" and "within 300 s" in results[3]["problem"]
