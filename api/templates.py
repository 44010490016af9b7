"""The report templates a client can ask for, with the JSON Schema of their `data`, and previews."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from api.auth import require_client
from api.errors import ApiError, NotFoundError, UnprocessableError, ValidationError
from api.extension import runtime
from api.schemas import json_body
from api.serialize import template_body, template_list_body
from jobs.runtime import report_context
from render import BrokenTemplateError, RenderError, Template, TemplateError, UnknownTemplateError
from render.preview import PreviewTimeoutError, preview_pdf

bp = Blueprint("templates", __name__, url_prefix="/api/templates")


def lookup_template(product_id: str, *, unknown: type[ApiError] = NotFoundError) -> Template:
    """The product's template; an unknown product is `unknown` (404, or 422 at submit), a broken one 422."""
    try:
        return runtime().templates.get(product_id)
    except BrokenTemplateError as exc:
        raise UnprocessableError(f"{exc.message}. Fix {exc.file} in the templates directory; GET /api/templates "
                                 f"lists broken templates.", error="template_broken",
                                 details=[exc.location()]) from None
    except UnknownTemplateError as exc:
        raise unknown(f"{exc}. GET /api/templates lists them.", error="unknown_product",
                      details=[{"field": "productId", "message": str(exc)}]) from None


@bp.get("")
@require_client
def list_templates() -> ResponseReturnValue:
    """Every product id with its title, kind and data schema, and the templates that failed to load."""
    catalog = runtime().templates
    broken = catalog.broken() if hasattr(catalog, "broken") else []  # test doubles may not know of any
    return jsonify(template_list_body(catalog.all(), broken))


@bp.get("/<product_id>")
@require_client
def get_template(product_id: str) -> ResponseReturnValue:
    """One product's title, kind and data schema."""
    return jsonify(template_body(lookup_template(product_id)))


@bp.post("/<product_id>/preview")
@require_client
def preview_template(product_id: str) -> ResponseReturnValue:
    """Render the given data, or the template's sample, and answer the PDF (for template authors)."""
    settings = runtime().settings
    if (request.content_length or 0) > settings.preview_max_bytes:
        raise ApiError(f"A preview takes at most {settings.preview_max_bytes} bytes of JSON; send less data.",
                       status_code=413, error="payload_too_large")
    template = lookup_template(product_id)
    data = preview_data(template)
    problems = template.validate(data)
    if problems:
        raise ValidationError(f"'data' does not match the {product_id} schema; see details.", error="invalid_data",
                              details=problems)
    try:
        pdf = preview_pdf(product_id, data, templates_dir=settings.templates_dir, context=report_context(settings),
                          timeout=settings.preview_timeout)
    except PreviewTimeoutError as exc:
        raise UnprocessableError(exc.message, error="preview_timeout") from None
    except TemplateError as exc:
        raise UnprocessableError(f"The template of {product_id} fails: {exc.message}", error="template_error",
                                 details=[exc.location()]) from None
    except RenderError as exc:
        raise UnprocessableError(exc.message, error="preview_failed", details=exc.errors) from None
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{product_id}-preview.pdf"'})


def preview_data(template: Template) -> dict[str, Any]:
    """`data` of the request body, or the template's sample when the body is empty or has none."""
    body = json_body() if request.get_data(cache=True) else {}
    data = body.get("data")
    if data is None:
        data = template.sample()
        if data is None:
            raise ValidationError(f"{template.product_id} has no sample data: send some in 'data'.",
                                  error="data_required", details=[{"field": "data", "message": "is required"}])
    return data
