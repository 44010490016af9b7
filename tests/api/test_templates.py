"""GET /api/templates, and the shipped fillable form through the whole service."""

from __future__ import annotations

import io
import json

from pypdf import PdfReader

from render.registry import BUILTIN_FORMS_DIR
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


def test_form_job_fills_every_mapped_field(client, runtime) -> None:
    request = sample_request(FORM)
    job_id = submit(client, request)
    run_jobs(runtime)

    assert status(client, job_id)["status"] == "completed"
    pdf = client.get(f"/api/jobs/{job_id}/download", headers=auth()).data
    mapping = json.loads((BUILTIN_FORMS_DIR / f"{FORM}.json").read_text())["fields"]
    data = request["data"]
    expected = {
        "nama_peserta": data["participant"]["name"],
        "tanggal_lahir": "14/03/2008",
        "usia": "17",
        "sekolah": data["participant"]["school"],
        "nama_wali": data["guardian"]["name"],
        "hubungan_wali": data["guardian"]["relationship"],
        "telepon_wali": data["guardian"]["phone"],
        "tanggal_tes": "12/01/2026",
        "setuju_tes": "/Yes",
        "setuju_data": "/Yes",
        "setuju_sekolah": "/Off",
        "kota": data["signed"]["city"],
        "tanggal_tanda_tangan": "10/01/2026",
    }
    assert set(expected) == set(mapping)
    assert {name: value for name, value in form_fields(pdf).items() if name in mapping} == expected
    assert len(PdfReader(io.BytesIO(pdf)).pages) >= 1


def test_form_job_with_invalid_data_is_400_naming_the_field(client) -> None:
    request = sample_request(FORM)
    request["data"]["consent"]["take_test"] = "yes"
    del request["data"]["participant"]["name"]

    response = client.post("/api/reports/generate-async", json=request, headers=auth())

    assert response.status_code == 400 and response.json["error"] == "invalid_data"
    assert {item["field"] for item in response.json["details"]} == {"data.participant.name", "data.consent.take_test"}
