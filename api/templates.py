"""The report templates a client can ask for, with the JSON Schema of their `data`."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from api.auth import require_client
from api.errors import NotFoundError
from api.extension import runtime
from api.serialize import template_body, template_list_body
from render import UnknownTemplateError

bp = Blueprint("templates", __name__, url_prefix="/api/templates")


@bp.get("")
@require_client
def list_templates() -> ResponseReturnValue:
    """Every product id with its title, kind (report or form) and data schema."""
    return jsonify(template_list_body(runtime().templates.all()))


@bp.get("/<product_id>")
@require_client
def get_template(product_id: str) -> ResponseReturnValue:
    """One product's title, kind and data schema."""
    try:
        template = runtime().templates.get(product_id)
    except UnknownTemplateError as exc:
        raise NotFoundError(f"{exc}. GET /api/templates lists them.", error="unknown_product") from None
    return jsonify(template_body(template))
