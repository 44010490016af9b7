"""GET /api/templates, and the shipped fillable form through the whole service."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.conftest import auth, run_jobs, sample_request
from tests.render.pdfs import NAME, flat, page_texts
from tests.render.test_forms import make_form
from tests.render.test_registry import EXAMPLE_TEMPLATES, drop_example
from tests.workers.conftest import form_fields, status, submit

FORM = "formulirPersetujuan"


def example_data() -> dict:
    return json.loads((EXAMPLE_TEMPLATES / "gayaBelajar.schema.json").read_text())["examples"][0]


def test_templates_lists_every_product_with_schema(client) -> None:
    response = client.get("/api/templates", headers=auth())

    assert response.status_code == 200
    listed = {item["productId"]: item for item in response.json["templates"]}
    assert response.json["count"] == len(listed)
    assert {"minatBakatUmum", FORM} <= set(listed)
    assert listed["minatBakatUmum"]["kind"] == "report" and listed[FORM]["kind"] == "form"
    assert listed[FORM]["title"] == "Formulir Persetujuan Tes Psikologi"
    form_schema = listed[FORM]["schema"]
    assert form_schema["type"] == "object" and "participant" in form_schema["required"]
    assert form_schema["properties"]["consent"]["properties"]["take_test"] == {
        "type": "boolean", "description": "Consent to take the test."
    }
    assert "properties" in listed["minatBakatUmum"]["schema"]


def test_templates_one_product_and_unknown_product(client) -> None:
    one = client.get(f"/api/templates/{FORM}", headers=auth())
    unknown = client.get("/api/templates/noSuchReport", headers=auth())

    assert one.status_code == 200 and one.json["productId"] == FORM
    assert unknown.status_code == 404 and unknown.json["error"] == "unknown_product"
    assert "formulirPersetujuan" in unknown.json["message"]


def test_templates_need_an_api_key(client) -> None:
    assert client.get("/api/templates").status_code == 401
    assert client.get(f"/api/templates/{FORM}").status_code == 401


def test_form_job_is_flattened_with_every_mapped_value(client, runtime) -> None:
    request = sample_request(FORM)
    job_id = submit(client, request)
    run_jobs(runtime)

    assert status(client, job_id)["status"] == "completed"
    pdf = client.get(f"/api/jobs/{job_id}/download", headers=auth()).data
    data = request["data"]
    shown = [data["participant"]["name"], "14/03/2008", "17", data["participant"]["school"], data["guardian"]["name"],
             data["guardian"]["relationship"], data["guardian"]["phone"], "12/01/2026", data["signed"]["city"],
             "10/01/2026"]
    lines = PdfReader(io.BytesIO(pdf)).pages[0].extract_text().splitlines()
    assert [value for value in shown if not any(value in line for line in lines)] == []
    assert form_fields(pdf) == {}  # flattened: nothing left for the recipient to change


def test_form_job_with_invalid_data_is_400_naming_the_field(client) -> None:
    request = sample_request(FORM)
    request["data"]["consent"]["take_test"] = "yes"
    del request["data"]["participant"]["name"]

    response = client.post("/api/reports/generate-async", json=request, headers=auth())

    assert response.status_code == 400 and response.json["error"] == "invalid_data"
    assert {item["field"] for item in response.json["details"]} == {"data.participant.name", "data.consent.take_test"}


@pytest.fixture
def templates_dir(runtime, tmp_path: Path) -> Path:
    """TEMPLATES_DIR with the example product, one that fails on request, a broken report and a broken form."""
    directory = tmp_path / "templates"
    directory.mkdir()
    drop_example(directory)
    drop_example(directory, "failing")
    failing = ('#if data.at("fail", default: false) { panic("asked to fail") }\n'
               '#for i in range(data.at("loops", default: 0)) { for j in range(100000) {} }\n')
    (directory / "failing.typ").write_text((directory / "failing.typ").read_text() + "\n" + failing)
    drop_example(directory, "brokenReport")
    (directory / "brokenReport.typ").write_text("#let x = (\n")
    make_form(directory / "brokenForm.pdf")
    (directory / "brokenForm.json").write_text(json.dumps({"title": "B", "fields": {"nope": {"path": "a"}}}))
    # A preview's child process needs ~0.5 s of CPU; on a loaded test machine that can take many seconds.
    runtime.settings = runtime.settings.with_changes(templates_dir=directory, preview_timeout=60.0)
    runtime.__dict__.pop("templates", None)
    return directory


def test_templates_lists_broken_ones_with_file_and_reason(client, templates_dir) -> None:
    body = client.get("/api/templates", headers=auth()).json

    assert {"minatBakatUmum", FORM, "gayaBelajar", "failing"} == {t["productId"] for t in body["templates"]}
    broken = {entry["productId"]: entry for entry in body["broken"]}
    assert set(broken) == {"brokenForm", "brokenReport"}
    assert broken["brokenReport"]["file"] == "brokenReport.typ" and broken["brokenReport"]["line"] == 1
    assert "unclosed delimiter" in broken["brokenReport"]["error"]
    assert "'nope' is not in the PDF" in broken["brokenForm"]["error"]


def test_broken_product_is_422_naming_the_file_and_others_keep_working(client, templates_dir) -> None:
    one = client.get("/api/templates/brokenForm", headers=auth())
    submitted = client.post("/api/reports/generate-async", json={"code": "c1", "productId": "brokenReport",
                                                                  "data": {}}, headers=auth())
    good = client.post("/api/reports/generate-async", json=sample_request() | {"code": "c2"}, headers=auth())
    new = client.post("/api/reports/generate-async", json={"code": "c3", "productId": "gayaBelajar",
                                                            "data": example_data()}, headers=auth())

    assert one.status_code == 422 and one.json["error"] == "template_broken"
    assert "brokenForm.json" in one.json["message"]
    assert submitted.status_code == 422 and submitted.json["error"] == "template_broken"
    [where] = submitted.json["details"]
    assert where["file"] == "brokenReport.typ" and where["line"] == 1
    assert good.status_code == 202 and new.status_code == 202


def test_preview_renders_the_sample_when_given_no_data(client, templates_dir) -> None:
    response = client.post("/api/templates/gayaBelajar/preview", headers=auth())

    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = flat(page_texts(response.data)[0])
    assert "Rizky Pratama" in text and "No. dokumen PRATINJAU" in text


def test_preview_renders_given_data(client, templates_dir) -> None:
    data = example_data()
    data["participant"]["name"] = NAME
    response = client.post("/api/templates/gayaBelajar/preview", json={"data": data}, headers=auth())

    assert response.status_code == 200 and NAME in page_texts(response.data)[0]


def test_preview_of_a_form_is_the_filled_flattened_form(client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(preview_timeout=60.0)
    response = client.post(f"/api/templates/{FORM}/preview", json={}, headers=auth())

    assert response.status_code == 200 and form_fields(response.data) == {}
    assert "Budi Santoso" in page_texts(response.data)[0]


def test_preview_template_error_is_422_saying_where(client, templates_dir) -> None:
    response = client.post("/api/templates/failing/preview", json={"data": example_data() | {"fail": True}},
                           headers=auth())

    assert response.status_code == 422 and response.json["error"] == "template_error"
    [where] = response.json["details"]
    assert where["file"] == "failing.typ" and where["line"] > 1 and "asked to fail" in where["message"]


def test_preview_past_its_time_limit_is_stopped(client, runtime, templates_dir) -> None:
    runtime.settings = runtime.settings.with_changes(preview_timeout=1.0)
    response = client.post("/api/templates/failing/preview", json={"data": example_data() | {"loops": 10**6}},
                           headers=auth())

    assert response.status_code == 422 and response.json["error"] == "preview_timeout"


def test_preview_refuses_bad_data_large_bodies_and_unknown_products(client, runtime, templates_dir) -> None:
    data = example_data()
    data["participant"]["name"] = "Rizky 🎉"
    bad = client.post("/api/templates/gayaBelajar/preview", json={"data": data}, headers=auth())
    runtime.settings = runtime.settings.with_changes(preview_max_bytes=100)
    large = client.post("/api/templates/gayaBelajar/preview", json={"data": example_data()}, headers=auth())
    unknown = client.post("/api/templates/noSuch/preview", headers=auth())
    broken = client.post("/api/templates/brokenReport/preview", headers=auth())

    assert bad.status_code == 400 and bad.json["details"][0]["field"] == "data.participant.name"
    assert "U+1F389" in bad.json["details"][0]["message"]
    assert large.status_code == 413
    assert unknown.status_code == 404 and broken.status_code == 422


def test_preview_needs_an_api_key(client) -> None:
    assert client.post(f"/api/templates/{FORM}/preview").status_code == 401
