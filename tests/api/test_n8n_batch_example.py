"""The n8n batch-from-a-spreadsheet example: its Code nodes run in Node.js on sheet rows, and what they build is a
batch the API accepts row by row; the rejected rows come back with their sheet row and field."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, auth

WORKFLOW = json.loads((EXAMPLES / "n8n" / "batch-from-sheet.json").read_text())
NODES = {node["name"]: node for node in WORKFLOW["nodes"]}
# Runs a Code node's JavaScript as n8n does: an async function body with `$input` and `$` (other nodes' items).
HARNESS = """
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const run = new AsyncFunction('$input', '$', input.code);
const wrap = (items) => items.map((json) => ({ json }));
const $ = (name) => ({ all: () => wrap(input.nodes[name]) });
run({ all: () => wrap(input.items) }, $).then((result) => process.stdout.write(JSON.stringify(result)));
"""


def run_code(tmp_path: Path, node: str, items: list[dict[str, Any]], nodes: dict[str, Any] | None = None
             ) -> list[dict[str, Any]]:
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS)
    payload = json.dumps({"code": NODES[node]["parameters"]["jsCode"], "items": items, "nodes": nodes or {}})
    done = subprocess.run(["node", str(harness)], input=payload, capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr
    return [item["json"] for item in json.loads(done.stdout)]


def sheet_row(number: int) -> dict[str, Any]:
    """A row of the sheet as n8n's Extract From File gives it: header names as keys, empty cells as ''."""
    return {"code": f"SHEET-{number}", "productId": "formulirPersetujuan", "priority": "",
            "data.participant.name": f"Peserta {number}", "data.participant.birth_date": "2008-03-14",
            "data.participant.age": 17, "data.guardian.name": "Budi Santoso", "data.test_date": "2026-01-12",
            "data.consent.take_test": True}


def test_n8n_batch_workflow_posts_each_batch_with_an_idempotency_key() -> None:
    submit = NODES["Submit batch"]["parameters"]
    assert submit["method"] == "POST" and submit["url"].endswith("/api/reports/generate-batch")
    assert submit["jsonBody"] == "={{ JSON.stringify({ items: $json.items }) }}"
    [header] = submit["headerParameters"]["parameters"]
    assert header["name"] == "Idempotency-Key" and "$execution.id" in header["value"]
    order = ["Start", "Read spreadsheet", "Extract rows", "Build batches", "Submit batch", "Rejected rows"]
    assert [WORKFLOW["connections"][name]["main"][0][0]["node"] for name in order[:-1]] == order[1:]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the Code nodes")
def test_n8n_batch_code_nodes_build_batches_the_api_accepts_and_list_rejected_rows(client, runtime,
                                                                                  tmp_path: Path) -> None:
    runtime.settings = runtime.settings.with_changes(max_queue_size=2000, max_queued_per_client=2000)
    rows = [sheet_row(number) for number in range(1, 1203)]
    rows[4]["data.guardian.name"] = ""  # a required field left empty: that row is rejected, the others are not
    rows[1100]["notes"] = "call first"  # a column that is not a submit field
    batches = run_code(tmp_path, "Build batches", rows)
    assert [(batch["firstRow"], len(batch["items"])) for batch in batches] == [(2, 1000), (1002, 202)]
    first = batches[0]["items"][0]
    assert first["data"]["participant"] == {"name": "Peserta 1", "birth_date": "2008-03-14", "age": 17}
    assert "priority" not in first and first["callback"].startswith("https://")
    answers = []
    for number, batch in enumerate(batches):  # as the HTTP Request node sends them (the callback made local)
        items = [item | {"callback": "http://127.0.0.1:9/pdf-complete"} for item in batch["items"]]
        response = client.post("/api/reports/generate-batch", json={"items": items},
                               headers=auth() | {"Idempotency-Key": f"sheet-1-{batch['firstRow']}"})
        assert response.status_code == 200, (number, response.json)
        answers.append(response.json)
    assert [(answer["accepted"], answer["rejected"]) for answer in answers] == [(999, 1), (201, 1)]
    rejected = run_code(tmp_path, "Rejected rows", answers, {"Build batches": batches})
    assert [(row["row"], row["code"]) for row in rejected] == [(6, "SHEET-5"), (1102, "SHEET-1101")]
    assert "data.guardian.name: is required" in rejected[0]["problems"]
    assert rejected[1]["problems"].startswith("notes: is not a field")
