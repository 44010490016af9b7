"""GET /metrics: Prometheus text format, computed from SQL and Redis at scrape time."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from api.extension import runtime
from jobs.metrics import JobMetricsCollector

bp = Blueprint("metrics", __name__)

_REGISTRY = "pdfjobs_metrics_registry"


@bp.get("/metrics")
def get_metrics() -> ResponseReturnValue:
    """Every pdfjobs_* metric (no authentication, like /healthz: keep the port off the internet)."""
    registry = current_app.extensions.get(_REGISTRY)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(JobMetricsCollector(runtime()))
        current_app.extensions[_REGISTRY] = registry
    return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
