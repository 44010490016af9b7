"""The OpenAPI document matches the app's routes exactly, and the docs page works offline."""

from __future__ import annotations

import re

from api.openapi import build_document

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
    documented = {path: set(item) for path, item in build_document()["paths"].items()}
    routes = app_routes(app)
    assert set(routes) - set(documented) == set(), "routes missing from api/openapi.py"
    assert set(documented) - set(routes) == set(), "documented paths the app does not serve"
    assert {path: methods for path, methods in routes.items() if documented[path] != methods} == {}


def test_openapi_path_parameters_and_refs_resolve(app) -> None:
    document = build_document()
    schemas = document["components"]["schemas"]
    text = str(document)
    for ref in re.findall(r"#/components/schemas/(\w+)", text):
        assert ref in schemas, ref
    for path, item in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)
            assert operation["responses"], (method, path)


def test_openapi_request_body_is_the_validated_model(client) -> None:
    document = client.get("/api/openapi.json").json
    assert document["openapi"].startswith("3.0")
    body = document["components"]["schemas"]["SubmitBody"]
    assert body["required"] == ["code", "productId"]
    assert body["properties"]["runAt"] == {"type": "string", "format": "date-time", "default": None,
                                           "description": body["properties"]["runAt"]["description"],
                                           "nullable": True}
    assert "anyOf" not in str(body)


def test_openapi_test_notices_an_undocumented_route(app) -> None:
    app.add_url_rule("/api/undocumented", "undocumented", lambda: "x")
    documented = set(build_document()["paths"])
    assert "/api/undocumented" in set(app_routes(app)) - documented


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
