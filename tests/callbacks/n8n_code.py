"""Run the Code nodes of examples/n8n in Node.js the way n8n runs them, for the tests of those workflows."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES

N8N = EXAMPLES / "n8n"
PLACEHOLDER = "whsec_REPLACE_WITH_YOUR_CLIENT_WEBHOOK_SECRET"
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the Code-node JavaScript")

# A Code node's JavaScript is the body of an async function with n8n's variables in scope and
# `this.helpers.getBinaryDataBuffer`. Each call is one run of the node; the workflow's static data is
# shared between calls, as between the executions of an active workflow. A webhook item is what a
# Webhook or Wait node with Options > Raw Body outputs: the request's headers, and its raw body as the
# binary property `data`.
HARNESS = """
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const run = new AsyncFunction('$input', '$', '$getWorkflowStaticData', '$runIndex', '$workflow', '$execution',
  'require', input.code);
const staticData = {};
const $ = (name) => ({ first: () => ({ json: input.nodes[name] }) });
const asItem = (item) => item.headers === undefined ? { json: item.json } : {
  json: { headers: item.headers, params: {}, query: {}, body: {} },
  binary: item.body === undefined ? undefined : { data: { data: item.body, mimeType: 'application/json' } },
};
(async () => {
  const outputs = [];
  for (const call of input.calls) {
    const items = call.items.map(asItem);
    const helpers = { getBinaryDataBuffer: async (i, name) => Buffer.from(items[i].binary[name].data, 'base64') };
    try {
      const result = await run.call({ helpers }, { all: () => items, first: () => items[0] }, $, () => staticData,
        call.runIndex, { id: input.workflowId }, { id: call.executionId }, require);
      outputs.push({ items: result.map((item) => item.json) });
    } catch (error) {
      outputs.push({ error: error.message });
    }
  }
  process.stdout.write(JSON.stringify(outputs));
})();
"""


def workflow(name: str) -> dict[str, Any]:
    """An example workflow's JSON."""
    return json.loads((N8N / name).read_text())


def nodes(flow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The workflow's nodes by name."""
    return {node["name"]: node for node in flow["nodes"]}


def code_of(name: str, node: str, secret: str | None = None) -> str:
    """A Code node's JavaScript, with the client's webhook secret pasted in when given."""
    code = nodes(workflow(name))[node]["parameters"]["jsCode"]
    return code if secret is None else code.replace(PLACEHOLDER, secret)


def webhook_item(headers: dict[str, str], body: bytes | None) -> dict[str, Any]:
    """An item as a Webhook/Wait node outputs it for a request; body None: Raw Body was off."""
    item: dict[str, Any] = {"headers": headers}
    if body is not None:
        item["body"] = base64.b64encode(body).decode()
    return item


def call(*items: dict[str, Any], run_index: int = 0, execution_id: str = "7") -> dict[str, Any]:
    """One run of the node on these input items."""
    return {"items": list(items), "runIndex": run_index, "executionId": execution_id}


def run_code(code: str, calls: list[dict[str, Any]], *, node_outputs: dict[str, dict[str, Any]] | None = None,
             workflow_id: str = "wfPdf", tmp_path: Path) -> list[dict[str, Any]]:
    """Run the code once per call; each result is {"items": [json, ...]} or {"error": message}.

    Args:
        node_outputs: the first output item's json of each node the code reads with `$('Name')`.
    """
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS)
    payload = json.dumps({"code": code, "calls": calls, "nodes": node_outputs or {}, "workflowId": workflow_id})
    completed = subprocess.run(["node", str(harness)], input=payload, capture_output=True, text=True, timeout=30)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)
