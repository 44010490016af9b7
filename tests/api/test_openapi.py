"""The OpenAPI document: valid OpenAPI 3.0, matches the app's routes exactly, shows every product's data,
and the docs page works offline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from api.schemas import SubmitBody
from render import load_registry
from tests.api.openapi_support import document_of, variant_app
from tests.render.test_forms import write_custom

# Not part of this API: Flask's static files and rq-dashboard (mounted at /rq, documented by its project).
FOREIGN_ENDPOINTS = re.compile(r"^(static|rq_dashboard\..*)$")
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def app_routes(app) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if FOREIGN_ENDPOINTS.match(rule.endpoint):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(method.lower() for method in rule.methods - IGNORED_METHODS)
    return routes


def test_openapi_documents_every_route_with_its_methods(app) -> None:
    documented = {path: set(item) for path, item in document_of(app)["paths"].items()}
    routes = app_routes(app)
    assert set(routes) - set(documented) == set(), "routes missing from api/openapi.py"
    assert set(documented) - set(routes) == set(), "documented paths the app does not serve"
    assert {path: methods for path, methods in routes.items() if documented[path] != methods} == {}


def test_openapi_test_notices_an_undocumented_route(app) -> None:
    app.add_url_rule("/api/undocumented", "undocumented", lambda: "x")
    assert "/api/undocumented" in set(app_routes(app)) - set(document_of(app)["paths"])


def test_openapi_document_is_valid_openapi_30(client) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.json
    assert document["openapi"].startswith("3.0.")  # Swagger UI 4 (swagger-ui-bundle) renders no 3.1
    validate(document)


def test_openapi_path_parameters_and_refs_resolve(app) -> None:
    document = document_of(app)
    schemas = document["components"]["schemas"]
    for ref in re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)):
        assert ref in schemas, ref
    for path, item in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)
            assert operation["responses"], (method, path)


def test_openapi_submit_body_is_one_schema_per_product(app) -> None:
    document = document_of(app)
    schemas = document["components"]["schemas"]
    submit = document["paths"]["/api/reports/generate-async"]["post"]["requestBody"]["content"]["application/json"]
    assert submit["schema"] == {"$ref": "#/components/schemas/SubmitRequest"}
    mapping = schemas["SubmitRequest"]["discriminator"]["mapping"]
    products = {template.product_id for template in load_registry().all()}
    assert set(mapping) == products
    for product_id, target in mapping.items():
        body = schemas[target.rsplit("/", 1)[1]]
        assert set(body["properties"]) == set(SubmitBody.model_fields)  # the model the API validates with
        assert body["required"] == ["code", "productId", "data"]  # no MONGO_URI: data must be inline
        assert body["properties"]["productId"]["enum"] == [product_id]
        assert body["properties"]["runAt"] | {"description": ""} == {
            "type": "string", "format": "date-time", "default": None, "nullable": True, "description": ""}
        data = schemas[body["properties"]["data"]["$ref"].rsplit("/", 1)[1]]
        assert data["type"] == "object" and data["required"]
    text = json.dumps(document)
    assert "anyOf" not in text and "$defs" not in text and '"const"' not in text


def test_openapi_takes_products_from_templates_dir_and_data_is_optional_with_mongo(runtime, tmp_path: Path) -> None:
    write_custom(tmp_path)
    app = variant_app(runtime, templates_dir=tmp_path, mongo_uri="mongodb://127.0.0.1:1/")
    document = document_of(app)
    validate(document)
    schemas = document["components"]["schemas"]
    assert "customForm" in schemas["SubmitRequest"]["discriminator"]["mapping"]
    assert schemas["SubmitBody.customForm"]["required"] == ["code", "productId"]
    person = schemas["Data.customForm"]["properties"]["person"]
    assert person["required"] == ["name"] and person["properties"]["name"]["type"] == "string"


@pytest.mark.parametrize("name", ["JobStatus", "JobList", "QueueStats", "ErrorBody", "TemplateList", "JobAccepted",
                                  "BatchAccepted", "BatchItemAccepted", "BatchItemRejected", "Schedule",
                                  "ScheduleList"])
def test_openapi_answers_are_closed_objects(app, name: str) -> None:
    schema = document_of(app)["components"]["schemas"][name]
    assert schema["additionalProperties"] is False and schema["required"]


def test_docs_page_loads_its_assets_from_this_service(client) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.data.decode()
    assert "http://" not in html and "https://" not in html  # no CDN: works offline
    for asset in re.findall(r'(?:src|href)="(/api/docs/[^"]+)"', html):
        response = client.get(asset)
        assert response.status_code == 200 and len(response.data) > 0, asset
    initializer = client.get("/api/docs/swagger-initializer.js").data.decode()
    assert '"/api/openapi.json"' in initializer
    assert client.get("/api/docs/../../config/settings.py").status_code == 404
    assert client.get("/api/docs/index.html").status_code == 404
