"""WSGI entry point for gunicorn: `gunicorn api.wsgi:app`."""

from __future__ import annotations

import logging

from api import create_app, warm_up
from config import Settings
from config.deployment import public_base_url_problem
from config.heap import freeze_startup_objects
from config.logging import setup_logging
from config.netguard import install_loopback_guard

settings = Settings.from_env()
setup_logging(settings.log_level, process="api")
if settings.loopback_only:
    install_loopback_guard()
problem = public_base_url_problem(settings)
if problem:
    logging.getLogger("api").warning("event=public_base_url_missing problem=%r", problem)
app = create_app(settings)
warm_up(app)
freeze_startup_objects()  # each gunicorn worker imports this module once, after its fork
