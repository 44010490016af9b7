"""Access to the per-app resources that `create_app` keeps in `app.extensions`."""

from __future__ import annotations

from flask import current_app

from jobs.runtime import Runtime

EXTENSION = "pdfjobs"


def runtime() -> Runtime:
    """The Runtime (settings, Redis, SQL sessions) of the current app."""
    return current_app.extensions[EXTENSION]
