"""rq-dashboard mounted at /rq behind HTTP basic auth, on the service's own Redis client.

rq-dashboard 0.9.0 builds a client from RQ_DASHBOARD_REDIS_URL on every request (its blueprint's
`push_rq_connection`), through a parser that knows neither `rediss+sentinel://` nor our timeouts.
The dashboard here uses the client every other process uses (jobs/runtime.connect_redis: a
Sentinel-managed master when REDIS_URL names Sentinel), so that per-request hook is taken off its
blueprint; RQ_DASHBOARD_REDIS_URL is then only the label its pages show, without credentials.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request
from rq_dashboard import blueprint as rq_blueprint
from rq_dashboard.legacy_config import upgrade_config
from rq_dashboard.web import push_rq_connection

from api.auth import check_basic_auth
from config import Settings
from jobs.runtime import connect_redis, redis_url

PREFIX = "/rq"


def mount_dashboard(app: Flask, settings: Settings) -> None:
    """Serve rq-dashboard at /rq; without RQ_DASHBOARD_PASSWORD it answers 401 to everyone."""
    app.config["RQ_DASHBOARD_REDIS_URL"] = (display_url(redis_url(settings)),)
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 2500)
    app.config.setdefault("DEPRECATED_OPTIONS", [])
    upgrade_config(app)
    hooks = rq_blueprint.before_request_funcs.setdefault(None, [])
    if push_rq_connection in hooks:  # the blueprint is a module global: taken off once per process
        hooks.remove(push_rq_connection)
    app.redis_conn = connect_redis(settings, socket_timeout=settings.redis_socket_timeout * 4)
    app.register_blueprint(rq_blueprint, url_prefix=PREFIX)

    @app.before_request
    def require_dashboard_login() -> Response | None:
        if request.path != PREFIX and not request.path.startswith(PREFIX + "/"):
            return None
        if check_basic_auth(settings.dashboard_username, settings.dashboard_password):
            return None
        return Response("Login required", 401, {"WWW-Authenticate": 'Basic realm="rq-dashboard"'})


def display_url(url: str) -> str:
    """The URL as the dashboard may show it: no password, no query (it may carry sentinel_password)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return url.split("?", 1)[0]
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
