"""The access log (one key=value line per request), the audit trail of state-changing calls, and
GET /api/audit for admin clients.

Every request gets a request id (a well-formed `X-Request-Id` it sent, else a new one), answered in
`X-Request-Id`. A state-changing call (POST, PUT, PATCH, DELETE under /api/) of an authenticated client
that succeeded, or that submitted a job, becomes an `audit_events` row: client, action, job id, time
(the request's start, UTC), source address, request id and status.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Flask, g, jsonify, request
from flask.typing import ResponseReturnValue
from flask.wrappers import Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import SQLAlchemyError

from api.answers import AuditEventAnswer, AuditPage
from api.auth import current_client, require_client
from api.errors import ForbiddenError, ValidationError
from api.extension import runtime
from callbacks.payloads import iso
from render.validation import field_errors
from store import audit as audit_store
from store.models import AuditEvent, utcnow

log = logging.getLogger(__name__)
access_log = logging.getLogger("api.access")
bp = Blueprint("audit", __name__, url_prefix="/api/audit")

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Action names of the job endpoints; any other state-changing endpoint is recorded under its endpoint name.
ACTIONS = {
    "reports.submit_report": "job.submit",
    "sync_reports.generate_report": "job.submit",
    "control.cancel_job": "job.cancel",
    "control.retry_job": "job.retry",
    "callbacks.redeliver_callback": "job.redeliver",
}
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def install_audit(app: Flask) -> None:
    """Request ids, the access log and audit rows for every request (register before auth: failed
    authentications get a request id and an access-log line too)."""
    app.before_request(_start)
    app.after_request(_finish)


def _start() -> None:
    sent = request.headers.get("X-Request-Id", "")
    g.request_id = sent if REQUEST_ID.match(sent) else uuid.uuid4().hex
    g.started, g.started_at = time.perf_counter(), utcnow()


def _finish(response: Response) -> Response:
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers["X-Request-Id"] = request_id
    client = g.get("client")
    if client is not None and _audited(response):
        _record(client.name, response, request_id)
    duration = (time.perf_counter() - g.started) * 1000 if "started" in g else 0.0
    access_log.info("method=%s path=%s status=%s client=%s duration_ms=%.1f request_id=%s source=%s",
                    request.method, quote(request.path, safe="/:@!$&'()*+,;=-._~"), response.status_code,
                    client.name if client else "-", duration, request_id, request.remote_addr or "-")
    return response


def _audited(response: Response) -> bool:
    if request.method not in STATE_CHANGING or not request.path.startswith("/api/") or g.get("audit_recorded"):
        return False
    return 200 <= response.status_code < 300 or g.get("audit_job_id") is not None


def audit_entry(client_name: str, *, status: int | None = None, job_id: str | None = None) -> audit_store.Entry:
    """The audit entry of the current request (a submit hands it to jobs.submit, which commits it with the job)."""
    endpoint = request.endpoint or request.path
    return audit_store.Entry(
        client_name=client_name, action=ACTIONS.get(endpoint, endpoint), job_id=job_id,
        source=request.remote_addr, request_id=g.get("request_id"), status=status,
        at=g.get("started_at") or utcnow(),
    )


def _record(client_name: str, response: Response, request_id: str) -> None:
    """One audit row; a failure to write it is logged, never turned into an error answer."""
    job_id = g.get("audit_job_id") or (request.view_args or {}).get("job_id") or _answered_job_id(response)
    entry = audit_entry(client_name, status=response.status_code, job_id=job_id)
    try:
        with runtime().session() as session:
            audit_store.record(session, entry)
    except SQLAlchemyError as exc:
        log.warning("event=audit_not_recorded action=%s job=%s client=%s request_id=%s reason=%r",
                    entry.action, job_id, client_name, request_id, type(exc).__name__)


def _answered_job_id(response: Response) -> str | None:
    if not response.is_json or response.is_streamed:
        return None
    body = response.get_json(silent=True)
    job_id = body.get("job_id") if isinstance(body, dict) else None
    return job_id if isinstance(job_id, str) else None


class AuditQuery(BaseModel):
    """Query parameters of GET /api/audit."""

    model_config = ConfigDict(extra="forbid")

    client: str | None = Field(None, max_length=100, description="only calls of this client")
    action: str | None = Field(None, max_length=64, description="only this action, e.g. job.cancel, client.disable")
    job_id: str | None = Field(None, max_length=64, description="only calls about this job")
    limit: int = Field(DEFAULT_LIMIT, ge=1, description="page size, default 50, at most 200 (larger values are "
                       "capped)")
    cursor: str | None = Field(None, max_length=100, description="the next_cursor of the previous page")


@bp.get("")
@require_client
def list_audit_events() -> ResponseReturnValue:
    """A page of audit events, newest first (admin clients only)."""
    if not current_client().admin:
        raise ForbiddenError("Only admin clients may read the audit trail; use an admin client's key.",
                             error="admin_only")
    query = _parse(request.args.to_dict())
    limit = min(query.limit, MAX_LIMIT)
    with runtime().session() as session:
        rows = audit_store.list_events(
            session, client_name=query.client, action=query.action, job_id=query.job_id,
            before_id=decode_cursor(query.cursor) if query.cursor else None, limit=limit + 1)
    page = list(rows[:limit])
    next_cursor = encode_cursor(page[-1].id) if len(rows) > limit else None
    events = [_event(row) for row in page]
    return jsonify(AuditPage(events=events, next_cursor=next_cursor, limit=limit).model_dump())


def _parse(args: dict[str, str]) -> AuditQuery:
    try:
        return AuditQuery.model_validate(args)
    except PydanticValidationError as exc:
        raise ValidationError("Invalid query parameters; see details.", details=field_errors(exc)) from None


def _event(row: AuditEvent) -> AuditEventAnswer:
    detail: dict[str, Any] | None = row.detail
    return AuditEventAnswer(id=row.id, at=iso(row.at) or "", client=row.client_name, action=row.action,
                            job_id=row.job_id, source=row.source, request_id=row.request_id, status=row.status,
                            detail=detail)


def encode_cursor(event_id: int) -> str:
    """An opaque cursor: the id of the last event of a page."""
    return base64.urlsafe_b64encode(f"audit:{event_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The event id inside a cursor; 400 when it was not made by encode_cursor."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "audit" or not number.isdigit():
            raise ValueError("bad cursor")
        return int(number)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationError(
            "Invalid cursor: pass the next_cursor value of the previous page unchanged.",
            error="invalid_cursor",
            details=[{"field": "cursor", "message": "is not a cursor returned by this endpoint"}],
        ) from None
