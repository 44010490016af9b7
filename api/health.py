"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from api.extension import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is alive."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Redis and SQL answer; 503 naming what does not."""
    rt = runtime()
    checks: dict[str, str] = {}
    try:
        rt.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    try:
        with rt.session() as session:
            session.execute(text("SELECT 1"))
        checks["sql"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["sql"] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    headers = {} if ready else {"Retry-After": "5"}
    return jsonify({"status": "ready" if ready else "not_ready", "checks": checks}), 200 if ready else 503, headers
