"""Reading the served OpenAPI document as a client would, and checking answers against it."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from openapi_schema_validator import OAS30Validator, oas30_format_checker, validate

from api import create_app
from api.docs import document_text
from jobs.runtime import Runtime


def document_of(app: Flask) -> dict[str, Any]:
    """The document the app serves at /api/openapi.json."""
    return json.loads(document_text(app))


def variant_runtime(runtime: Runtime, **changes: Any) -> Runtime:
    """A runtime on the same Redis and SQL with other settings (TEMPLATES_DIR, MONGO_URI)."""
    return Runtime(settings=runtime.settings.with_changes(**changes), redis=runtime.redis, engine=runtime.engine,
                   session_factory=runtime.session_factory)


def variant_app(runtime: Runtime, **changes: Any) -> Flask:
    """The app on `variant_runtime(runtime, **changes)`."""
    return create_app(runtime=variant_runtime(runtime, **changes))


def check_against(document: dict[str, Any], name: str, instance: Any) -> None:
    """Fail unless `instance` validates against the component schema `name` (OpenAPI 3.0 rules, formats too)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    validate(instance, schema, cls=OAS30Validator, format_checker=oas30_format_checker)


def check_answer(document: dict[str, Any], response: Any, path: str, method: str = "get") -> dict[str, Any]:
    """Fail unless the JSON answer validates against what the document says `method path` answers with its status."""
    responses = document["paths"][path][method]["responses"]
    assert str(response.status_code) in responses, (method, path, response.status_code, response.get_json())
    schema = responses[str(response.status_code)]["content"]["application/json"]["schema"]
    check_against(document, schema["$ref"].rsplit("/", 1)[1], response.get_json())
    return response.get_json()
