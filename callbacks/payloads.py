"""Webhook bodies and the failure URL rule (SPEC.md "Webhooks")."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

SUCCESS = "success"
FAILURE = "failure"


def iso(moment: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, or None."""
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def failure_url(callback: str | None, failure_callback: str | None) -> str | None:
    """failureCallback, else the success URL with /pdf-complete -> /pdf-failed, else the success URL."""
    if failure_callback:
        return failure_callback
    if callback and "/pdf-complete" in callback:
        head, sep, tail = callback.rpartition("/pdf-complete")
        return f"{head}/pdf-failed{tail}"
    return callback


def success_body(
    *, job_id: str, code: str, product_id: str, google_drive_link: str | None, download_url: str,
    completed_at: datetime | None,
) -> dict[str, Any]:
    """The success webhook body."""
    return {
        "job_id": job_id,
        "status": "completed",
        "code": code,
        "productId": product_id,
        "google_drive_link": google_drive_link,
        "download_url": download_url,
        "completed_at": iso(completed_at),
    }


def failure_body(
    *, job_id: str, status: str, error: str | None, failed_at: datetime | None, retry_count: int,
    code: str, product_id: str,
) -> dict[str, Any]:
    """The failure webhook body (status is "failed" or "cancelled")."""
    return {
        "job_id": job_id,
        "status": status,
        "code": code,
        "productId": product_id,
        "error": error,
        "failed_at": iso(failed_at),
        "retry_count": retry_count,
    }


def encode(body: dict[str, Any]) -> str:
    """The exact JSON text that is signed and sent."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)
