"""GET /api/templates, and the shipped fillable form through the whole service."""

from __future__ import annotations

import io

from pypdf import PdfReader

from tests.conftest import auth, run_jobs, sample_request
from tests.workers.conftest import form_fields, status, submit

FORM = "formulirPersetujuan"


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
