"""GET /api/jobs/<id>/events: Server-Sent Events of a job's progress until it ends."""

from __future__ import annotations

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue

from api.auth import require_client
from api.extension import runtime
from api.jobs import load_job
from jobs.watch import job_events

bp = Blueprint("events", __name__, url_prefix="/api/jobs")


@bp.get("/<job_id>/events")
@require_client
def stream_job_events(job_id: str) -> ResponseReturnValue:
    """`progress` events while the job waits and runs, then one `complete` or `error`, then the stream closes."""
    load_job(job_id)
    rt = runtime()
    settings = rt.settings
    stream = job_events(rt, job_id, interval=settings.job_watch_interval, max_seconds=settings.events_max_seconds)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering (nginx)
    return Response(stream, mimetype="text/event-stream", headers=headers)
