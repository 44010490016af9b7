"""POST /api/reports/generate-batch: reading the items, each checked exactly as a single submit body."""

from __future__ import annotations

import hashlib
from typing import Any

from flask import request

from api.errors import ApiError, ValidationError
from api.requests import MAX_IDEMPOTENCY_KEY, job_request_from
from api.schemas import json_body
from config import Settings
from jobs.submit import JobRequest

ITEM_KEY = "idempotencyKey"  # an item's own Idempotency-Key, beside the submit body's fields


def read_items(settings: Settings) -> list[Any]:
    """The batch's `items` (unchecked); a 400 or 413 that says what is wrong with the request around them."""
    limit = settings.batch_max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(f"The batch body is larger than {limit} bytes (BATCH_MAX_BODY_BYTES); split it into smaller "
                       "batches.", status_code=413, error="payload_too_large")
    request.max_content_length = limit  # this endpoint only: larger than MAX_BODY_BYTES of a single submit
    body = json_body()
    unknown = sorted(set(body) - {"items"})
    if unknown:
        raise ValidationError('A batch is {"items": [<submit body>, ...]}; see details.', details=[
            {"field": name, "message": "is not a field of a batch; put it into each item"} for name in unknown])
    items = body.get("items")
    problem = _items_problem(items, settings.batch_max_items)
    if problem:
        raise ValidationError(f"'items' {problem}.", details=[{"field": "items", "message": problem}])
    return items  # type: ignore[return-value]


def _items_problem(items: Any, most: int) -> str | None:
    if items is None:
        return "is required: a list of submit bodies"
    if not isinstance(items, list):
        return "must be a list of submit bodies"
    if not items:
        return "must have at least 1 item"
    if len(items) > most:
        return f"must have at most {most} items (BATCH_MAX_ITEMS); got {len(items)}, split the batch"
    return None


def parse_items(items: list[Any], batch_key: str | None) -> list[JobRequest | ApiError]:
    """Each item as the JobRequest of a single submit, or the error that submit would have answered."""
    checked_urls: set[str] = set()  # a callback URL used by many items is checked (and resolved) once
    parsed: list[JobRequest | ApiError] = []
    for index, item in enumerate(items):
        try:
            parsed.append(parse_item(item, index, batch_key, checked_urls))
        except ApiError as exc:
            parsed.append(exc)
    return parsed


def parse_item(item: Any, index: int, batch_key: str | None, checked_urls: set[str]) -> JobRequest:
    """One item: a submit body, optionally with its own `idempotencyKey`."""
    if not isinstance(item, dict):
        raise ValidationError("The item must be a JSON object: a submit body.",
                              details=[{"field": "body", "message": "must be a JSON object"}])
    fields = dict(item)
    key = _item_key(fields.pop(ITEM_KEY, None), index, batch_key)
    return job_request_from(fields, idempotency_key=key, checked_urls=checked_urls)


def _item_key(key: Any, index: int, batch_key: str | None) -> str | None:
    """The item's Idempotency-Key: its own, else one derived from the batch's key and its position (so a
    repeated batch replays item by item), else none."""
    if key is None:
        return derived_key(batch_key, index) if batch_key else None
    if not isinstance(key, str) or not key.strip() or len(key.strip()) > MAX_IDEMPOTENCY_KEY:
        raise ValidationError(f"{ITEM_KEY} must be a string of 1-{MAX_IDEMPOTENCY_KEY} characters.", details=[
            {"field": ITEM_KEY, "message": f"must be a string of 1-{MAX_IDEMPOTENCY_KEY} characters"}])
    return key.strip()


def derived_key(batch_key: str, index: int) -> str:
    """The Idempotency-Key of item `index` of a batch sent with `batch_key` (fits the column whatever the
    length of the batch's key)."""
    return f"batch:{hashlib.sha256(batch_key.encode()).hexdigest()[:32]}:{index}"
