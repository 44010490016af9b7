"""The OpenAPI document and a Swagger UI page that works offline (assets from swagger-ui-bundle)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, Response, current_app, send_from_directory
from flask.typing import ResponseReturnValue
from swagger_ui_bundle import swagger_ui_path

from api.errors import NotFoundError
from api.extension import EXTENSION
from api.openapi import build_document

bp = Blueprint("docs", __name__, url_prefix="/api")
DOCUMENT = "openapi_document"  # app.extensions key: the document as JSON text

ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
                    "favicon-32x32.png", "favicon-16x16.png"})
INITIALIZER = "swagger-initializer.js"
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>PDF job service API</title>
  <link rel="stylesheet" href="/api/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/api/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api/docs/swagger-ui-bundle.js"></script>
  <script src="/api/docs/swagger-ui-standalone-preset.js"></script>
  <script src="/api/docs/swagger-initializer.js"></script>
</body>
</html>
"""
INITIALIZER_JS = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"
  });
};
"""


def document_text(app: Flask) -> str:
    """The app's OpenAPI document as JSON, built on first use and kept: the template registry loads lazily too."""
    text = app.extensions.get(DOCUMENT)
    if text is None:
        text = app.extensions[DOCUMENT] = json.dumps(app_document(app))
    return text


def app_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of `app`: its products (TEMPLATES_DIR too), `data` required unless MongoDB is set."""
    rt = app.extensions[EXTENSION]
    return build_document(rt.templates.all(), data_required=not rt.settings.mongo_uri)


@bp.get("/openapi.json")
def get_openapi() -> ResponseReturnValue:
    """The OpenAPI 3.0 document of every route and every product."""
    return Response(document_text(current_app), mimetype="application/json")


@bp.get("/docs")
def get_docs_page() -> ResponseReturnValue:
    """Swagger UI on /api/openapi.json."""
    return Response(PAGE, mimetype="text/html")


@bp.get("/docs/<path:filename>")
def get_docs_asset(filename: str) -> ResponseReturnValue:
    """Swagger UI's scripts and styles, served from the installed package (no CDN)."""
    if filename == INITIALIZER:
        return Response(INITIALIZER_JS, mimetype="text/javascript")
    if filename not in ASSETS:
        raise NotFoundError(f"No docs asset {filename!r}.")
    return send_from_directory(str(swagger_ui_path), filename, max_age=86400)
