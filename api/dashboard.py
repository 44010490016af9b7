"""rq-dashboard mounted at /rq: behind HTTP basic auth, same-origin POSTs only, and consistent with SQL.

SQL is the record of jobs and Redis only carries them, so the dashboard may not change a job behind
SQL's back. Every rq-dashboard 0.9.0 route that accepts more than GET is taken over here:

- Requeue (one failed job, or every failed job of a queue) goes through `jobs.control.retry_job`, the
  code behind `POST /api/jobs/<id>/retry`: the SQL row is reopened and a fresh RQ job enqueued.
  rq's own requeue put the old RQ job back, which the worker skipped as final, so the dashboard said
  "finished" while the API said "failed".
- Delete, empty and compact are switched off (403, and the Delete and Empty buttons are hidden):
  deleting or emptying touches only Redis, and the reconciler enqueues again what SQL still calls
  queued; a job is cancelled with `POST /api/jobs/<id>/cancel`. Compact renames the queue's key while
  it runs, so workers and submits miss the queue meanwhile. A route a later rq-dashboard adds is
  switched off the same way until it is reviewed.

GET never changes state: rq-dashboard's `GET /requeue/<queue>` is refused (405). A POST must come from
the dashboard's own pages: its Origin (or, without one, its Referer) must name this host, so another
site cannot make a logged-in browser press the buttons.

The connection: rq-dashboard 0.9.0 builds a client from RQ_DASHBOARD_REDIS_URL on every request (its
blueprint's `push_rq_connection`), through a parser that knows neither `rediss+sentinel://` nor our
timeouts. The dashboard here uses the client every other process uses (jobs/runtime.connect_redis: a
Sentinel-managed master when REDIS_URL names Sentinel), so that per-request hook is taken off its
blueprint; RQ_DASHBOARD_REDIS_URL is then only the label its pages show, without credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from rq import Queue
from rq_dashboard import blueprint as rq_blueprint
from rq_dashboard.legacy_config import upgrade_config
from rq_dashboard.web import push_rq_connection

from api.auth import check_basic_auth
from api.errors import ApiError, ConflictError, ForbiddenError, NotFoundError
from api.extension import runtime
from config import Settings
from jobs import control
from jobs.runtime import connect_redis, redis_url
from store.jobs import DuplicateJobError

log = logging.getLogger(__name__)

PREFIX = "/rq"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SWITCHED_OFF = (
    "This dashboard action is switched off: SQL is the record of jobs, and changing Redis alone is undone "
    "by the reconciler. Cancel a job with POST /api/jobs/<job_id>/cancel (an admin API key may cancel any "
    "client's job); retry failed jobs with the Requeue buttons or `python -m ops.cli requeue-failed`."
)


def mount_dashboard(app: Flask, settings: Settings) -> None:
    """Serve rq-dashboard at /rq; without RQ_DASHBOARD_PASSWORD it answers 401 to everyone."""
    app.config["RQ_DASHBOARD_REDIS_URL"] = (display_url(redis_url(settings)),)
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 2500)
    app.config.setdefault("DEPRECATED_OPTIONS", [])
    app.config["RQ_DASHBOARD_DISABLE_DELETE"] = True  # hides its Delete and Empty buttons
    upgrade_config(app)
    hooks = rq_blueprint.before_request_funcs.setdefault(None, [])
    if push_rq_connection in hooks:  # the blueprint is a module global: taken off once per process
        hooks.remove(push_rq_connection)
    app.redis_conn = connect_redis(settings, socket_timeout=settings.redis_socket_timeout * 4)
    app.register_blueprint(rq_blueprint, url_prefix=PREFIX)
    take_over_actions(app)

    @app.before_request
    def guard_dashboard() -> Response | None:
        if request.path != PREFIX and not request.path.startswith(PREFIX + "/"):
            return None
        if not check_basic_auth(settings.dashboard_username, settings.dashboard_password):
            return Response("Login required", 401, {"WWW-Authenticate": 'Basic realm="rq-dashboard"'})
        if request.method not in SAFE_METHODS and not same_origin(settings):
            source = request.headers.get("Origin") or request.headers.get("Referer") or ""
            log.warning("event=dashboard_cross_origin_refused method=%s path=%s origin=%s", request.method,
                        request.path, urlsplit(source).netloc or "-")
            raise ForbiddenError(
                "This dashboard action must come from the dashboard's own page: the request's Origin (or "
                "Referer) does not name this host.", error="cross_origin_refused",
            )
        return None


def display_url(url: str) -> str:
    """The URL as the dashboard may show it: no password, no query (it may carry sentinel_password)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return url.split("?", 1)[0]
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def take_over_actions(app: Flask) -> None:
    """Route every rq-dashboard endpoint that accepts more than GET to SQL-consistent code or a refusal."""
    handlers: dict[str, Callable[..., ResponseReturnValue]] = {
        "rq_dashboard.requeue_job_view": requeue_job,
        "rq_dashboard.requeue_all": requeue_queue,
    }
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("rq_dashboard.") and not (rule.methods or set()) <= SAFE_METHODS:
            app.view_functions[rule.endpoint] = handlers.get(rule.endpoint, switched_off)


def switched_off(**_: str) -> ResponseReturnValue:
    """Refuse an action that would change Redis behind SQL's back."""
    raise ForbiddenError(SWITCHED_OFF, error="dashboard_action_switched_off")


def requeue_job(job_id: str) -> ResponseReturnValue:
    """The dashboard's Requeue button: retry the failed job through SQL, as POST /api/jobs/<id>/retry does."""
    try:
        job = control.retry_job(runtime(), job_id)
    except LookupError:
        raise NotFoundError(f"No job {job_id!r} in SQL: this service did not submit it.") from None
    except control.JobStateError as exc:
        raise ConflictError(f"{exc}.", error="not_retryable") from None
    except DuplicateJobError as exc:
        raise ConflictError(
            f"Job {exc.existing.job_id} for the same code and productId is still {exc.existing.status}; "
            "wait for it to end (or cancel it) before retrying this one.", error="active_job_exists",
        ) from None
    log.info("job=%s event=dashboard_requeue status=%s user=%s", job_id, job.status, _user())
    return jsonify(status="OK", job_id=job_id, job_status=job.status)


def requeue_queue(queue_name: str) -> ResponseReturnValue:
    """The dashboard's Requeue All: retry, through SQL, every job in the queue's failed registry."""
    if request.method != "POST":
        raise ApiError("Requeue All changes jobs, so it takes POST (the dashboard's button sends one).",
                       status_code=405, error="method_not_allowed", headers={"Allow": "POST"})
    rt = runtime()
    job_ids = Queue(queue_name, connection=rt.redis).failed_job_registry.get_job_ids(cleanup=False)
    requeued: list[str] = []
    skipped: dict[str, str] = {}
    for job_id in job_ids:
        try:
            control.retry_job(rt, job_id)
        except LookupError:
            skipped[job_id] = "not a job of this service (no SQL row)"
        except DuplicateJobError as exc:
            skipped[job_id] = f"job {exc.existing.job_id} for the same code and product is active"
        except control.JobStateError as exc:
            skipped[job_id] = str(exc)
        else:
            requeued.append(job_id)
    log.info("event=dashboard_requeue_all queue=%s requeued=%d skipped=%d user=%s", queue_name, len(requeued),
             len(skipped), _user())
    return jsonify(status="OK", count=len(requeued), requeued=requeued, skipped=skipped)


def same_origin(settings: Settings) -> bool:
    """Whether the request's Origin, or without one its Referer, names this host (or PUBLIC_BASE_URL's)."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return False  # a browser sends Origin with every cross-site POST; a page hiding it is refused too
    allowed = {_authority(request.host)}
    if settings.public_base_url:
        allowed.add(_authority(urlsplit(str(settings.public_base_url)).netloc))
    given = urlsplit(source).netloc
    return bool(given) and _authority(given) in allowed


def _authority(netloc: str) -> str:
    """host[:port] in lower case without a default port (:80, :443): a proxy may end TLS before us."""
    host = netloc.rpartition("@")[2].lower()
    name, colon, port = host.rpartition(":")
    return name if colon and port in ("80", "443") else host


def _user() -> str:
    auth = request.authorization
    return (auth.username if auth else None) or "-"
