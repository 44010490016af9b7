"""The Flask app factory. Routes live in one blueprint per resource."""

from __future__ import annotations

from flask import Flask
from sqlalchemy.orm import configure_mappers

from api import (
    audit,
    callbacks,
    control,
    docs,
    events,
    health,
    job_list,
    jobs,
    metrics,
    queue_stats,
    reports,
    schedules,
    sync_reports,
    templates,
)
from api.audit import install_audit
from api.auth import install_auth
from api.dashboard import mount_dashboard
from api.errors import register_error_handlers
from api.extension import EXTENSION
from api.limits import install_limits
from config import Settings
from jobs.runtime import Runtime, build_runtime


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the app: resources in app.extensions, error handlers, access log and audit, authentication and
    rate limits (in this order: each request is identified before it is counted), blueprints, rq-dashboard."""
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    rt = app.extensions[EXTENSION] = runtime or build_runtime(
        settings, socket_timeout=settings.redis_socket_timeout, wal_checkpoints=False, polling_lock_wait=True
    )
    register_error_handlers(app)
    install_audit(app)
    install_auth(app)
    install_limits(app, rt)
    blueprints = (health, reports, jobs, job_list, control, events, sync_reports, queue_stats, metrics, docs,
                  templates, callbacks, schedules, audit)
    for module in blueprints:
        app.register_blueprint(module.bp)
    mount_dashboard(app, settings)
    return app


def warm_up(app: Flask) -> None:
    """Load, before the first request, what the first requests would otherwise load while clients wait: the
    template catalog (each template's schema compiled and its sample rendered once: tens of milliseconds in
    which a gevent worker answers nobody), the ORM mappings and the first SQL and Redis connections.
    gunicorn imports the app in each worker after its fork (api/wsgi.py): every worker comes up warm."""
    rt = app.extensions[EXTENSION]
    rt.templates.all()
    configure_mappers()  # SQLAlchemy would set up the ORM mappings at the first query
    rt.open_connections()
