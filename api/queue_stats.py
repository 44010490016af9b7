"""GET /api/queue/stats: queue lengths, workers, the last hour's outcomes and the active alerts."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from api.auth import require_client
from api.extension import runtime
from callbacks.payloads import iso
from jobs.stats import queue_stats

bp = Blueprint("queue_stats", __name__, url_prefix="/api/queue")


@bp.get("/stats")
@require_client
def get_queue_stats() -> ResponseReturnValue:
    """Stats of the whole service (no per-client data)."""
    stats = queue_stats(runtime())
    stats["generated_at"] = iso(stats["generated_at"])
    return jsonify(stats)
