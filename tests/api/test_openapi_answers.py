"""The OpenAPI document does not lie: real answers validate against it, and its submit example for each
product (TEMPLATES_DIR ones too) is accepted and runs to completion."""

from __future__ import annotations

from pathlib import Path

from api import create_app
from jobs.runtime import Runtime, set_runtime
from tests.api.openapi_support import check_against, check_answer, document_of, variant_runtime
from tests.callbacks.receiver import Receiver
from tests.conftest import CLIENT_B, auth, run_jobs, sample_request
from tests.render.test_forms import write_custom
from tests.workers.webhook_support import run_webhooks

SUBMIT = "/api/reports/generate-async"
JOB = "/api/jobs/{job_id}"


def test_openapi_submit_example_of_each_product_is_accepted_and_runs(runtime: Runtime, tmp_path: Path) -> None:
    write_custom(tmp_path)
    variant = variant_runtime(runtime, templates_dir=tmp_path)
    set_runtime(variant)  # the in-process worker renders with this registry too
    app = create_app(runtime=variant)
    client, document = app.test_client(), document_of(app)
    examples = document["paths"][SUBMIT]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == set(document["components"]["schemas"]["SubmitRequest"]["discriminator"]["mapping"])
    assert "customForm" in examples
    jobs = {}
    for product_id, example in examples.items():
        request = example["value"]
        check_against(document, "SubmitRequest", request)
        check_against(document, f"SubmitBody.{product_id}", request)
        response = client.post(SUBMIT, json=request, headers=auth())
        assert response.status_code == 202, (product_id, request, response.get_json())
        jobs[product_id] = check_answer(document, response, SUBMIT, "post")["job_id"]
    run_jobs(variant)
    for product_id, job_id in jobs.items():
        body = check_answer(document, client.get(f"/api/jobs/{job_id}", headers=auth()), JOB)
        assert body["status"] == "completed", (product_id, body["error"])


def test_openapi_job_answers_validate_against_the_document(app, client, runtime: Runtime,
                                                           receiver: Receiver) -> None:
    document = document_of(app)
    body = sample_request() | {"callback": receiver.url()}
    job_id = check_answer(document, client.post(SUBMIT, json=body, headers=auth()), SUBMIT, "post")["job_id"]
    check_answer(document, client.post(SUBMIT, json=body, headers=auth()), SUBMIT, "post")  # 200: the same job
    waiting = check_answer(document, client.get(f"/api/jobs/{job_id}", headers=auth()), JOB)
    assert waiting["callback"]["status"] == "waiting"
    check_answer(document, client.get("/api/jobs?limit=1", headers=auth()), "/api/jobs")
    check_answer(document, client.get("/api/queue/stats", headers=auth()), "/api/queue/stats")
    run_jobs(runtime)
    run_webhooks(runtime)
    done = check_answer(document, client.get(f"/api/jobs/{job_id}", headers=auth()), JOB)
    assert done["status"] == "completed" and done["download_url"] and done["callback"]["status"] == "delivered"
    redeliver = f"/api/jobs/{job_id}/callbacks/redeliver"
    check_answer(document, client.post(redeliver, headers=auth()), "/api/jobs/{job_id}/callbacks/redeliver", "post")
    check_answer(document, client.get("/api/queue/stats", headers=auth()), "/api/queue/stats")


def test_openapi_control_answers_validate_against_the_document(app, client) -> None:
    document = document_of(app)
    job_id = client.post(SUBMIT, json=sample_request(), headers=auth()).get_json()["job_id"]
    for _ in range(2):  # cancelled, then 409: already cancelled
        check_answer(document, client.post(f"/api/jobs/{job_id}/cancel", headers=auth()),
                     "/api/jobs/{job_id}/cancel", "post")
    check_answer(document, client.post(f"/api/jobs/{job_id}/retry", headers=auth()), "/api/jobs/{job_id}/retry", "post")
    no_callback = client.post(f"/api/jobs/{job_id}/callbacks/redeliver", headers=auth())
    assert no_callback.status_code == 409
    check_answer(document, no_callback, "/api/jobs/{job_id}/callbacks/redeliver", "post")


def test_openapi_error_and_service_answers_validate_against_the_document(app, client) -> None:
    document = document_of(app)
    unknown_product = sample_request() | {"productId": "noSuchReport"}
    for body, headers in [({"code": ""}, auth()), (unknown_product, auth()), (sample_request(), {})]:
        check_answer(document, client.post(SUBMIT, json=body, headers=headers), SUBMIT, "post")
    job_id = client.post(SUBMIT, json=sample_request(), headers=auth()).get_json()["job_id"]
    check_answer(document, client.get(f"/api/jobs/{job_id}", headers=auth(CLIENT_B)), JOB)  # 404
    check_answer(document, client.get(f"/api/jobs/{job_id}/download", headers=auth()), JOB + "/download")  # 409
    check_answer(document, client.get("/api/jobs?limit=0", headers=auth()), "/api/jobs")  # 400
    templates = check_answer(document, client.get("/api/templates", headers=auth()), "/api/templates")
    for template in templates["templates"]:
        one = client.get(f"/api/templates/{template['productId']}", headers=auth())
        assert check_answer(document, one, "/api/templates/{product_id}") == template
    check_answer(document, client.get("/api/templates/noSuchReport", headers=auth()), "/api/templates/{product_id}")
    check_answer(document, client.get("/healthz"), "/healthz")
    check_answer(document, client.get("/readyz"), "/readyz")
