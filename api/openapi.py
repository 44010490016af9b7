"""The OpenAPI document: one entry per route (tests/api/test_openapi.py fails when they drift apart).

Assembled from pydantic's JSON Schema (api/openapi_schemas.py), not by spectree or flask-openapi3: they take over
validation, error answers or routing, and flask-openapi3 writes 3.1, which the pinned Swagger UI cannot render.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from api.audit import AuditQuery
from api.openapi_schemas import components, list_parameters, query_parameters, ref, submit_examples
from render import Template

JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}, "example": "pdf_0123"}
SECURED = [{"bearer": []}, {"apiKey": []}]


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref(name)}}}


def _error(description: str) -> dict[str, Any]:
    return _json("ErrorBody", description)


def _op(summary: str, tag: str, responses: dict[str, Any], *, secured: bool = True,
        parameters: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None, **extra: Any
        ) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses, **extra}
    if secured:
        operation["security"] = SECURED
        responses.setdefault("401", _error("missing or invalid API key"))
        responses.setdefault("429", _error(
            "over the client's rate limit, or too many failed authentications from this address (Retry-After, "
            "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset)"))
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": body}}
    return operation


_IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
                "description": "same key + same body returns the same job (200); a different body is 422"}
_BATCH_IDEMPOTENCY = _IDEMPOTENCY | {"description": "replays the batch item by item: each item without its own "
                                                    "idempotencyKey gets one derived from this key and its position"}
_PDF = {"description": "the PDF", "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}
_SUBMIT_ERRORS = {
    "400": _error("invalid JSON or fields (details name each)"),
    "413": _error("body too large"),
    "422": _error("unknown productId, or Idempotency-Key reused with another body"),
    "429": _error("over the client's rate limit, or the client has its maximum of queued and scheduled jobs "
                  "(client_queue_full); Retry-After says when to retry"),
    "503": _error("queue full (Retry-After)"),
}


def paths(examples: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every route of the app: path -> method -> operation; `examples` are the named submit examples."""
    return {**_service_paths(), **_report_paths(examples), **_job_paths(), **_schedule_paths(), **_template_paths(),
            **_docs_paths(), **_audit_paths()}


def _service_paths() -> dict[str, dict[str, Any]]:
    return {
        "/healthz": {"get": _op("The process is alive", "health", {"200": _json("Health", "ok")}, secured=False)},
        "/readyz": {"get": _op("Redis and SQL answer", "health", {"200": _json("Readiness", "ready"),
                                                                   "503": _json("Readiness", "not ready")},
                               secured=False)},
        "/metrics": {"get": _op("Prometheus metrics (computed from SQL and Redis at scrape time)", "health",
                                {"200": {"description": "text/plain; version=0.0.4"}}, secured=False)},
        "/api/queue/stats": {"get": _op(
            "Queue lengths, workers, last hour's outcomes and processing times, active alerts", "queue",
            {"200": _json("QueueStats", "stats")})},
    }


def _report_paths(examples: dict[str, Any]) -> dict[str, dict[str, Any]]:
    body = {"schema": ref("SubmitRequest"), "examples": examples}
    return {
        "/api/reports/generate-async": {"post": _op(
            "Submit a report job", "reports",
            {"202": _json("JobAccepted", "accepted"), "200": _json("JobAccepted", "an earlier job for the same "
             "request (Idempotency-Key, or same code + productId still active)"), **_SUBMIT_ERRORS},
            body=body, parameters=[_IDEMPOTENCY])},
        "/api/reports/generate": {"post": _op(
            "Submit and wait up to SYNC_TIMEOUT for the PDF", "reports",
            {"200": _PDF, "202": _json("JobAccepted", "not done within SYNC_TIMEOUT: poll the job"),
             **_SUBMIT_ERRORS, "409": _error("the job was cancelled"), "422": _error("the job failed, or the "
             "request is unprocessable (unknown productId, reused Idempotency-Key)")},
            body=body, parameters=[_IDEMPOTENCY])},
        "/api/reports/generate-batch": {"post": _op(
            "Submit up to BATCH_MAX_ITEMS jobs at once: each item is checked as a single submit; the valid ones are "
            "recorded in one transaction and queued in one round trip", "reports",
            {"200": _json("BatchAccepted", "every item's job (status_code 202 new, 200 earlier) or error (400, 422), "
                                           "in request order"),
             "400": _error("not {\"items\": [...]}, no items, or more than BATCH_MAX_ITEMS"),
             "413": _error("body larger than BATCH_MAX_BODY_BYTES"),
             "422": _error("the batch adds more queued jobs than MAX_QUEUE_SIZE: send fewer items per batch"),
             "503": _error("the batch's queued jobs do not fit under MAX_QUEUE_SIZE: nothing accepted (Retry-After)")},
            body={"schema": ref("BatchRequest")}, parameters=[_BATCH_IDEMPOTENCY])},
    }


def _job_paths() -> dict[str, dict[str, Any]]:
    job = [JOB_ID]
    return {
        "/api/jobs": {"get": _op(
            "List jobs, newest first (own jobs; admin clients see all)", "jobs",
            {"200": _json("JobList", "a page of jobs"), "400": _error("invalid filter, limit or cursor")},
            parameters=list_parameters())},
        "/api/jobs/{job_id}": {"get": _op(
            "Job status with queue position and estimated completion", "jobs",
            {"200": _json("JobStatus", "the job"), "404": _error("unknown job")}, parameters=job)},
        "/api/jobs/{job_id}/download": {"get": _op(
            "Download the PDF", "jobs",
            {"200": _PDF, "302": {"description": "redirect to the Google Drive or Dropbox copy, or to a "
                                                  "presigned S3 URL (S3_DOWNLOAD=redirect)"},
             "404": _error("unknown job"), "409": _error("not completed"), "410": _error("removed after retention")},
            parameters=job)},
        "/api/jobs/{job_id}/events": {"get": _op(
            "Server-Sent Events: `progress`, then `complete` or `error` (data: status, phase, progress, "
            "message); the stream closes when the job ends", "jobs",
            {"200": {"description": "text/event-stream", "content": {"text/event-stream": {"schema": {
                "type": "string"}}}}, "404": _error("unknown job")}, parameters=job)},
        "/api/jobs/{job_id}/cancel": {"post": _op(
            "Cancel a queued or scheduled job; stop a running one", "jobs",
            {"200": _json("JobStatus", "cancelled"), "404": _error("unknown job"),
             "409": _error("already completed, failed or cancelled")}, parameters=job)},
        "/api/jobs/{job_id}/retry": {"post": _op(
            "Re-queue a failed or cancelled job under the same id", "jobs",
            {"202": _json("JobAccepted", "queued again"), "404": _error("unknown job"),
             "409": _error("not failed/cancelled, or another job for the same code + productId is active")},
            parameters=job)},
        "/api/jobs/{job_id}/callbacks/redeliver": {"post": _op(
            "Send the job's final webhook again (same webhook-id, a new attempt)", "webhooks",
            {"202": _json("Redelivery", "redelivery scheduled"),
             "404": _error("unknown job"),
             "409": _error("job not final, no callback URL, or an attempt is under way")}, parameters=job)},
    }


def _schedule_paths() -> dict[str, dict[str, Any]]:
    one = [{"name": "schedule_id", "in": "path", "required": True, "schema": {"type": "string"},
            "example": "sch_0123"}]
    page = [{"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1},
             "description": "page size, default 100, at most 500 (larger values are capped)"},
            {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "the next_cursor of the previous page"}]
    missing = _error("unknown schedule")
    return {
        "/api/schedules": {
            "post": _op("Create a recurring schedule: a job at each tick of a cron expression in a time zone",
                        "schedules", {"201": _json("Schedule", "created; its URL is in Location"),
                                      "400": _error("invalid fields (details name each; the job's under job.)"),
                                      "422": _error("unknown productId in the job")},
                        body={"schema": ref("ScheduleRequest")}),
            "get": _op("List schedules, newest first (own schedules; admin clients see all)", "schedules",
                       {"200": _json("ScheduleList", "a page of schedules"),
                        "400": _error("invalid limit or cursor")}, parameters=page),
        },
        "/api/schedules/{schedule_id}": {
            "get": _op("One schedule", "schedules", {"200": _json("Schedule", "the schedule"), "404": missing},
                       parameters=one),
            "patch": _op("Pause ({\"paused\": true}), resume, or change a schedule; its next run is worked out "
                         "again from now", "schedules",
                         {"200": _json("Schedule", "the changed schedule"), "400": _error("invalid fields"),
                          "404": missing, "422": _error("unknown productId in the job")},
                         parameters=one, body={"schema": ref("SchedulePatch")}),
            "delete": _op("Delete a schedule (the jobs it made stay)", "schedules",
                          {"204": {"description": "deleted"}, "404": missing}, parameters=one),
        },
    }


_PREVIEW_BODY = {
    "type": "object", "additionalProperties": False,
    "description": "Optional: without a body (or without `data`) the template's own sample is rendered.",
    "properties": {"data": {"type": "object", "description": "Data as a submit's `data` for this product"}},
}


def _template_paths() -> dict[str, dict[str, Any]]:
    product = [{"name": "product_id", "in": "path", "required": True, "schema": {"type": "string"},
                "example": "minatBakatUmum"}]
    preview = _op(
        "Render the given data, or the template's sample without a body, and answer the PDF at once (for "
        "template authors: the document number reads PREVIEW)", "templates",
        {"200": _PDF, "400": _error("invalid_data: `data` does not match the product's schema, or has "
                                    "characters no report font can show (details name each field)"),
         "404": _error("unknown product"), "413": _error("body larger than PREVIEW_MAX_BYTES"),
         "422": _error("template_broken, template_error (details: file, line, column, message), or "
                       "preview_timeout (longer than PREVIEW_TIMEOUT)")},
        parameters=product, body={"schema": _PREVIEW_BODY})
    preview["requestBody"]["required"] = False  # no body: the template's sample
    return {
        "/api/templates": {"get": _op(
            "Products (templates) with title, kind and the JSON schema of their data, and the templates that "
            "failed to load", "templates",
            {"200": _json("TemplateList", "every product, and `broken`: file, line and reason of each template "
                                          "that failed to load")})},
        "/api/templates/{product_id}": {"get": _op(
            "One product with its data schema", "templates",
            {"200": _json("TemplateInfo", "the product"), "404": _error("unknown product"),
             "422": _error("template_broken: the product's template failed to load (details: file, line)")},
            parameters=product)},
        "/api/templates/{product_id}/preview": {"post": preview},
    }


def _docs_paths() -> dict[str, dict[str, Any]]:
    return {
        "/api/openapi.json": {"get": _op("This document", "docs", {"200": {"description": "OpenAPI 3.0"}},
                                         secured=False)},
        "/api/docs": {"get": _op("Rendered API documentation (Swagger UI, offline)", "docs",
                                 {"200": {"description": "HTML"}}, secured=False)},
        "/api/docs/{filename}": {"get": _op(
            "Swagger UI assets", "docs", {"200": {"description": "asset"}, "404": _error("no such asset")},
            secured=False, parameters=[{"name": "filename", "in": "path", "required": True,
                                        "schema": {"type": "string"}}])},
    }


def _audit_paths() -> dict[str, dict[str, Any]]:
    return {
        "/api/audit": {"get": _op(
            "Audit trail: who changed what, when, from where (admin clients only), newest first", "audit",
            {"200": _json("AuditPage", "a page of audit events"), "400": _error("invalid filter, limit or cursor"),
             "403": _error("not an admin client")},
            parameters=query_parameters(AuditQuery))},
    }


def build_document(templates: Iterable[Template], *, data_required: bool, version: str = "0.1.0") -> dict[str, Any]:
    """The whole OpenAPI 3.0 document, with each product's data schema.

    Args:
        data_required: whether submits must carry `data` inline (no MongoDB to read it from).
    """
    schemas = components(templates, data_required=data_required)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "PDF job service",
            "version": version,
            "description": "Queue PDF reports, follow them, get them by webhook or download. Every /api/* call "
                           "except the docs needs an API key: `Authorization: Bearer <key>` or `X-API-Key`.",
        },
        "paths": paths(submit_examples(schemas)),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
