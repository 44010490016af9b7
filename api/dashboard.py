"""rq-dashboard mounted at /rq behind HTTP basic auth."""

from __future__ import annotations

from flask import Flask, Response, request
from rq_dashboard import blueprint as rq_blueprint
from rq_dashboard.web import setup_rq_connection

from api.auth import check_basic_auth
from config import Settings
from jobs.runtime import redis_url

PREFIX = "/rq"


def mount_dashboard(app: Flask, settings: Settings) -> None:
    """Serve rq-dashboard at /rq; without RQ_DASHBOARD_PASSWORD it answers 401 to everyone."""
    app.config["RQ_DASHBOARD_REDIS_URL"] = redis_url(settings)
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 2500)
    app.config.setdefault("DEPRECATED_OPTIONS", [])
    setup_rq_connection(app)
    app.register_blueprint(rq_blueprint, url_prefix=PREFIX)

    @app.before_request
    def require_dashboard_login() -> Response | None:
        if request.path != PREFIX and not request.path.startswith(PREFIX + "/"):
            return None
        if check_basic_auth(settings.dashboard_username, settings.dashboard_password):
            return None
        return Response("Login required", 401, {"WWW-Authenticate": 'Basic realm="rq-dashboard"'})
