"""Component schemas of the OpenAPI document (OpenAPI 3.0 dialect, which Swagger UI 4 renders)."""

from __future__ import annotations

from typing import Any

from api.job_list import ListQuery
from api.schemas import SubmitBody

STATUSES = ["queued", "scheduled", "processing", "completed", "failed", "cancelled"]


def to_openapi30(schema: Any) -> Any:
    """Turn pydantic's JSON Schema into OpenAPI 3.0: `anyOf [X, null]` becomes X with `nullable: true`."""
    if isinstance(schema, list):
        return [to_openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: to_openapi30(value) for key, value in schema.items() if key != "title"}
    options = out.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        out.pop("anyOf")
        merged = rest[0] if len(rest) == 1 else {"anyOf": rest}
        out = merged | {key: value for key, value in out.items()} | {"nullable": True}
    return out


def _string(nullable: bool = False, fmt: str | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", **extra}
    if fmt:
        schema["format"] = fmt
    if nullable:
        schema["nullable"] = True
    return schema


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


_INT = {"type": "integer"}
_NULLABLE_INT = {"type": "integer", "nullable": True}
_NUMBER = {"type": "number", "nullable": True}
_WHEN = _string(nullable=True, fmt="date-time")

ERROR = _object(
    {"error": _string(description="machine-readable code"), "message": _string(description="what is wrong and how "
     "to fix it"), "details": {"type": "array", "items": {"type": "object", "additionalProperties": True}}},
    ["error", "message", "details"],
)
JOB_ACCEPTED = _object(
    {"job_id": _string(), "status": _string(enum=STATUSES), "estimated_completion": _WHEN,
     "position_in_queue": _NULLABLE_INT | {"description": "jobs ahead, counting higher-priority queues"},
     "status_url": _string()},
    ["job_id", "status", "status_url"],
)
CALLBACK = _object(
    {"status": _string(description="waiting, pending, delivered or failed"), "attempts": _INT,
     "last_response_code": _NULLABLE_INT, "last_error": _string(nullable=True),
     "webhook_id": _string(nullable=True), "url": _string(nullable=True)}
) | {"nullable": True}
JOB_STATUS = _object(
    {"job_id": _string(), "code": _string(), "productId": _string(), "priority": _string(enum=["high", "normal",
     "low"]), "status": _string(enum=STATUSES), "progress": _INT, "phase": _string(nullable=True),
     "estimated_completion": _WHEN, "position_in_queue": _NULLABLE_INT, "created_at": _WHEN, "run_at": _WHEN,
     "started_at": _WHEN, "completed_at": _WHEN, "retry_count": _INT, "error": _string(nullable=True),
     "download_url": _string(nullable=True), "google_drive_link": _string(nullable=True),
     "file_size": _NULLABLE_INT, "callback": CALLBACK, "status_url": _string()},
    ["job_id", "status", "progress"],
)
JOB_SUMMARY = _object(
    {"job_id": _string(), "client": _string(), "code": _string(), "productId": _string(), "priority": _string(),
     "status": _string(enum=STATUSES), "progress": _INT, "created_at": _WHEN, "run_at": _WHEN,
     "started_at": _WHEN, "completed_at": _WHEN, "retry_count": _INT, "error": _string(nullable=True),
     "download_url": _string(nullable=True), "status_url": _string()},
)
JOB_LIST = _object(
    {"jobs": {"type": "array", "items": {"$ref": "#/components/schemas/JobSummary"}},
     "next_cursor": _string(nullable=True, description="pass as `cursor` for the next page; null on the last"),
     "limit": _INT},
    ["jobs", "next_cursor"],
)
ALERT = _object({"name": _string(enum=["queue_length", "failure_rate", "avg_processing_time", "no_workers",
                                        "redis_unavailable"]),
                 "message": _string(), "value": _NUMBER, "threshold": _NUMBER})
QUEUE_STATS = _object(
    {"queues": _object({name: _INT for name in ("high", "normal", "low")}) | {"nullable": True},
     "webhook_queue": _NULLABLE_INT, "retry_waiting": _NULLABLE_INT, "scheduled": _INT, "processing": _INT,
     "queued_in_sql": _INT,
     "workers": _object({"total": _INT, "busy": _INT, "idle": _INT}) | {"nullable": True},
     "last_hour": _object({"completed": _INT, "failed": _INT, "cancelled": _INT, "failure_rate": {"type": "number"},
                           "avg_processing_seconds": _NUMBER, "p95_processing_seconds": _NUMBER}),
     "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
     "generated_at": _WHEN},
)


def components() -> dict[str, Any]:
    """Every named schema; the request bodies come from the pydantic models the API validates with."""
    return {
        "SubmitBody": to_openapi30(SubmitBody.model_json_schema(ref_template="#/components/schemas/{model}")),
        "Error": ERROR,
        "JobAccepted": JOB_ACCEPTED,
        "JobStatus": JOB_STATUS,
        "JobSummary": JOB_SUMMARY,
        "JobList": JOB_LIST,
        "Alert": ALERT,
        "QueueStats": QUEUE_STATS,
    }


def list_parameters() -> list[dict[str, Any]]:
    """The query parameters of GET /api/jobs, from the pydantic model that validates them."""
    schema = to_openapi30(ListQuery.model_json_schema())
    described = {
        "status": "only jobs in this state (status=failed is the dead-letter view)",
        "created_after": "ISO 8601 with time zone; inclusive",
        "created_before": "ISO 8601 with time zone; exclusive",
        "limit": "page size, default 50, at most 200 (larger values are capped)",
        "cursor": "the next_cursor of the previous page",
    }
    return [
        {"name": name, "in": "query", "required": False, "schema": prop, "description": described.get(name, "")}
        for name, prop in schema["properties"].items()
    ]
