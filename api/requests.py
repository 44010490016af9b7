"""Turning a submit body into a checked JobRequest (shared by the async and sync endpoints)."""

from __future__ import annotations

from typing import Any

from flask import request

from api.errors import UnprocessableError, ValidationError
from api.extension import runtime
from api.schemas import json_body, parse_submit
from api.templates import lookup_template
from callbacks.url_policy import CallbackUrlError, check_callback_url
from jobs.submit import JobRequest

MAX_IDEMPOTENCY_KEY = 255


def parse_job_request() -> JobRequest:
    """Validate body, template data and callback URLs; raise a 400/422 that names what is wrong."""
    return job_request_from(json_body(), idempotency_key=idempotency_key_header())


def job_request_from(raw: dict[str, Any], *, idempotency_key: str | None = None,
                     checked_urls: set[str] | None = None) -> JobRequest:
    """Validate one submit body (a request's, a batch item's, a schedule's job) as parse_job_request does.

    Args:
        checked_urls: callback URLs found acceptable already (a batch checks each distinct URL once).
    """
    body = parse_submit(raw)
    rt = runtime()
    template = lookup_template(body.productId, unknown=UnprocessableError)
    if body.data is None and not rt.settings.mongo_uri:
        raise ValidationError("data is required unless MONGO_URI is configured: send the report data inline "
                              "in 'data' (GET /api/templates shows its schema).", error="data_required",
                              details=[{"field": "data", "message": "is required (no MongoDB to read it from)"}])
    if body.data is not None:
        problems = template.validate(body.data)
        if problems:
            raise ValidationError(f"'data' does not match the {body.productId} schema; see details "
                                  f"(GET /api/templates shows the schema).", error="invalid_data", details=problems)
    _check_callbacks({"callback": body.callback, "failureCallback": body.failureCallback}, checked_urls)
    return JobRequest(
        code=body.code,
        product_id=body.productId,
        priority=body.priority,
        callback=body.callback,
        failure_callback=body.failureCallback,
        data=body.data,
        run_at=body.runAt,
        idempotency_key=idempotency_key,
    )


def _check_callbacks(urls: dict[str, str | None], checked: set[str] | None = None) -> None:
    allowed = runtime().settings.callback_allowed_hosts
    checked = set() if checked is None else checked
    details = []
    for field, url in urls.items():
        if not url or url in checked:
            continue
        try:
            check_callback_url(url, allowed)
            checked.add(url)
        except CallbackUrlError as exc:
            details.append({"field": field, "message": str(exc)})
    if details:
        raise ValidationError("A callback URL is not allowed; see details.", error="invalid_callback", details=details)


def idempotency_key_header() -> str | None:
    """The request's Idempotency-Key header, checked; None when not sent."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationError(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} characters.",
            details=[{"field": "Idempotency-Key", "message": f"must be 1-{MAX_IDEMPOTENCY_KEY} characters"}],
        )
    return key
