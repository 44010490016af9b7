"""GET /api/queue/stats: queue lengths, workers, the last hour's outcomes and the active alerts."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from api.auth import require_client
from api.extension import runtime
from api.serialize import queue_stats_body
from jobs.stats import queue_stats

bp = Blueprint("queue_stats", __name__, url_prefix="/api/queue")


@bp.get("/stats")
@require_client
def get_queue_stats() -> ResponseReturnValue:
    """Stats of the whole service (no per-client data)."""
    return jsonify(queue_stats_body(queue_stats(runtime())))
