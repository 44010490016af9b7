"""GET /api/jobs: the caller's jobs (every job for an admin client), newest first, cursor-paginated."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Literal

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from api.auth import current_client, require_client
from api.errors import ValidationError
from api.extension import runtime
from api.schemas import DateTime
from api.serialize import job_list_body
from render.validation import field_errors
from store import jobs as job_store
from store.models import JobRecord

bp = Blueprint("job_list", __name__, url_prefix="/api/jobs")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
Status = Literal["queued", "scheduled", "processing", "completed", "failed", "cancelled"]


class ListQuery(BaseModel):
    """Query parameters of GET /api/jobs."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    productId: str | None = Field(None, max_length=255)  # noqa: N815
    code: str | None = Field(None, max_length=255)
    created_after: DateTime | None = None
    created_before: DateTime | None = None
    limit: int = Field(DEFAULT_LIMIT, ge=1)
    cursor: str | None = Field(None, max_length=500)


@bp.get("")
@require_client
def list_jobs() -> ResponseReturnValue:
    """A page of jobs and the cursor of the next page (null on the last page)."""
    query = parse_query(request.args.to_dict())
    client = current_client()
    limit = min(query.limit, MAX_LIMIT)
    with runtime().session() as session:
        jobs = job_store.list_jobs(
            session,
            client_name=None if client.admin else client.name,
            status=query.status,
            product_id=query.productId,
            code=query.code,
            created_after=query.created_after,
            created_before=query.created_before,
            cursor=decode_cursor(query.cursor) if query.cursor else None,
            limit=limit + 1,
        )
    page = list(jobs[:limit])
    next_cursor = encode_cursor(page[-1]) if len(jobs) > limit else None
    return jsonify(job_list_body(page, next_cursor, limit))


def parse_query(args: dict[str, str]) -> ListQuery:
    """Validate the query string; a 400 names every bad parameter."""
    try:
        return ListQuery.model_validate(args)
    except PydanticValidationError as exc:
        raise ValidationError(
            "Invalid query parameters; see details. Dates are ISO 8601 with a time zone, e.g. "
            "2026-01-15T10:30:00Z (URL-encode a '+' offset as %2B).",
            details=field_errors(exc),
        ) from None


def encode_cursor(job: JobRecord) -> str:
    """An opaque cursor: the (created_at, job_id) of the last job of a page."""
    raw = json.dumps([job.created_at.isoformat(), job.job_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, job_id) inside a cursor; 400 when it was not made by encode_cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, job_id = json.loads(raw)
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None or not isinstance(job_id, str):
            raise ValueError("bad cursor")
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ValidationError(
            "Invalid cursor: pass the next_cursor value of the previous page unchanged.",
            error="invalid_cursor",
            details=[{"field": "cursor", "message": "is not a cursor returned by this endpoint"}],
        ) from None
    return moment, job_id

