"""A product added by dropping two files into TEMPLATES_DIR, with the real service under supervisord:
listed after SIGHUP, previewed, and completed as a job with its signed webhook; broken templates beside it
are listed with their reason and every other product keeps working."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypdf import PdfReader
from standardwebhooks.webhooks import Webhook

from ops.harness import RunningService
from tests.callbacks.receiver import Receiver
from tests.conftest import CLIENT_A, sample_request
from tests.e2e.conftest import Api, start_service
from tests.render.pdfs import NAME, assert_every_font_embedded, flat
from tests.render.test_forms import make_form
from tests.render.test_registry import EXAMPLE_TEMPLATES, drop_example
from tests.workers.webhook_support import wait_until

PRODUCT = "gayaBelajar"


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("templates")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, templates: Path) -> Iterator[RunningService]:
    """The service with an empty TEMPLATES_DIR that it looks at only on SIGHUP."""
    running = start_service(tmp_path_factory.mktemp("templates-e2e") / "var", TEMPLATES_DIR=str(templates),
                            TEMPLATES_RELOAD_INTERVAL="0", PREVIEW_TIMEOUT="60")  # a loaded test machine
    yield running
    running.stop()


@pytest.fixture
def api(service: RunningService) -> Api:
    """A client that opens a new connection per request: after SIGHUP gunicorn's old processes finish
    the connections they hold, answering from the templates they loaded before the files came."""
    client = Api(service)
    client.http.headers["Connection"] = "close"
    return client


def product_data() -> dict:
    data = json.loads((EXAMPLE_TEMPLATES / f"{PRODUCT}.schema.json").read_text())["examples"][0]
    data["participant"]["name"] = NAME
    return data


def api_workers(service: RunningService) -> set[int]:
    """PIDs of the gunicorn worker processes (the children of the api program's master)."""
    [master] = service.program_pids("api")
    return {int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()}


def listing(api: Api) -> dict:
    response = api.get("/api/templates")
    assert response.status_code == 200, response.text
    return response.json()


def test_e2e_product_dropped_into_templates_dir_lists_previews_and_completes_with_webhook(
    api: Api, service: RunningService, templates: Path, receiver: Receiver
) -> None:
    assert PRODUCT not in {t["productId"] for t in listing(api)["templates"]}
    drop_example(templates)
    drop_example(templates, "brokenReport")
    (templates / "brokenReport.typ").write_text("#let x = (\n")
    make_form(templates / "brokenForm.pdf")
    (templates / "brokenForm.json").write_text(json.dumps({"title": "B", "fields": {"nope": {"path": "a"}}}))

    before = api_workers(service)
    assert before
    service.ctl("signal", "HUP", "api", "pdf_worker:*")

    # gunicorn replaces its workers on SIGHUP; until the old ones exit, a request may reach one of them
    assert wait_until(lambda: not before & api_workers(service), 30)
    assert wait_until(lambda: PRODUCT in {t["productId"] for t in listing(api)["templates"]}
                      and {b["productId"] for b in listing(api)["broken"]} == {"brokenReport", "brokenForm"}, 30)
    preview = api.post(f"/api/templates/{PRODUCT}/preview", json={"data": product_data()})
    assert preview.status_code == 200 and preview.headers["Content-Type"] == "application/pdf"
    assert NAME in PdfReader(io.BytesIO(preview.content)).pages[0].extract_text()

    body = {"code": "e2e-new-product", "productId": PRODUCT, "data": product_data(),
            "callback": receiver.url("/webhook/pdf-complete")}
    response = api.submit(body)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert api.wait_for(job_id)["status"] == "completed"
    assert wait_until(lambda: len(receiver.requests) == 1, 30)
    [hook] = receiver.requests
    Webhook(CLIENT_A.webhook_secret).verify(hook.body, hook.headers)
    assert json.loads(hook.body).items() >= {"job_id": job_id, "status": "completed", "productId": PRODUCT}.items()
    pdf = api.get(f"/api/jobs/{job_id}/download").content
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert NAME in text and job_id in flat(text)
    assert_every_font_embedded(pdf)


def test_e2e_broken_templates_do_not_take_the_others_down(api: Api, service: RunningService) -> None:
    assert wait_until(lambda: {b["productId"] for b in listing(api)["broken"]} == {"brokenReport", "brokenForm"}, 30)
    broken = api.submit({"code": "e2e-broken", "productId": "brokenForm", "data": {}})
    assert broken.status_code == 422 and broken.json()["error"] == "template_broken"
    assert broken.json()["details"][0]["file"] == "brokenForm.json"
    good = api.submit(sample_request() | {"code": "e2e-builtin"})
    assert good.status_code == 202 and api.wait_for(good.json()["job_id"])["status"] == "completed"
    assert api.get("/readyz").status_code == 200
