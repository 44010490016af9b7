"""The report templates a client can ask for, with the JSON Schema of their `data`."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from api.auth import require_client
from api.errors import NotFoundError
from api.extension import runtime
from render import UnknownTemplateError

bp = Blueprint("templates", __name__, url_prefix="/api/templates")


@bp.get("")
@require_client
def list_templates() -> ResponseReturnValue:
    """Every product id with its title, kind (report or form) and data schema."""
    templates = runtime().templates.all()
    return jsonify({"templates": [template.describe() for template in templates], "count": len(templates)})


@bp.get("/<product_id>")
@require_client
def get_template(product_id: str) -> ResponseReturnValue:
    """One product's title, kind and data schema."""
    try:
        template = runtime().templates.get(product_id)
    except UnknownTemplateError as exc:
        raise NotFoundError(f"{exc}. GET /api/templates lists them.", error="unknown_product") from None
    return jsonify(template.describe())
