"""API errors: one base class, one handler, the JSON error body of SPEC.md."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered as `{"error", "message", "details"}` with `status_code`."""

    status_code = 400
    error = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        status_code: int | None = None,
        error: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.headers = headers or {}
        if status_code is not None:
            self.status_code = status_code
        if error is not None:
            self.error = error

    def to_dict(self) -> dict[str, Any]:
        """The JSON body."""
        return {"error": self.error, "message": self.message, "details": self.details}


class ValidationError(ApiError):
    status_code = 400
    error = "validation_error"


class AuthenticationError(ApiError):
    status_code = 401
    error = "unauthorized"

    def __init__(self, message: str):
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="pdf-jobs"'})


class ForbiddenError(ApiError):
    status_code = 403
    error = "forbidden"


class NotFoundError(ApiError):
    status_code = 404
    error = "not_found"


class ConflictError(ApiError):
    status_code = 409
    error = "conflict"


class GoneError(ApiError):
    status_code = 410
    error = "gone"


class UnprocessableError(ApiError):
    status_code = 422
    error = "unprocessable"


class ServiceUnavailableError(ApiError):
    status_code = 503
    error = "service_unavailable"

    def __init__(self, message: str, *, retry_after: int, error: str = "service_unavailable"):
        super().__init__(message, headers={"Retry-After": str(retry_after)}, error=error)


DATABASE_RETRY_AFTER = 5  # seconds: a PostgreSQL restart or fail-over is usually over by then

_HTTP_MESSAGES = {
    404: ("not_found", "No such endpoint. See /api/docs for the API."),
    405: ("method_not_allowed", "This endpoint does not accept that HTTP method. See /api/docs."),
    413: ("payload_too_large", "The request body is larger than {limit} bytes; send less data."),
    415: ("unsupported_media_type", "Send the body as JSON with Content-Type: application/json."),
}


def register_error_handlers(app: Flask) -> None:
    """Answer ApiError, werkzeug's HTTP errors and anything unexpected with the JSON error body."""

    @app.errorhandler(ApiError)
    def handle_api_error(exc: ApiError) -> ResponseReturnValue:
        return jsonify(exc.to_dict()), exc.status_code, exc.headers

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException) -> ResponseReturnValue:
        code = exc.code or 500
        error, message = _HTTP_MESSAGES.get(code, (_snake(exc.name), exc.description or exc.name))
        message = message.format(limit=app.config.get("MAX_CONTENT_LENGTH"))
        headers = dict(exc.get_response().headers)
        headers.pop("Content-Type", None)
        headers.pop("Content-Length", None)
        return jsonify({"error": error, "message": message, "details": []}), code, headers

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeoutError)  # every pooled connection busy for pool_timeout: a database that hangs
    def handle_database_unavailable(exc: OperationalError | InterfaceError | PoolTimeoutError) -> ResponseReturnValue:
        # The driver's own message (no statement parameters: engines hide them) says which server and why.
        cause = getattr(exc, "orig", None) or exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        log.warning("event=database_unavailable path=%s type=%s reason=%r", request.path, type(cause).__name__,
                    reason)
        return handle_api_error(ServiceUnavailableError(
            f"The database cannot be reached right now; retry after {DATABASE_RETRY_AFTER} s.",
            retry_after=DATABASE_RETRY_AFTER, error="database_unavailable"))

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("event=unhandled_error type=%s", type(exc).__name__)
        body = {"error": "internal_error", "message": "An unexpected error occurred; it has been logged.",
                "details": []}
        return jsonify(body), 500


def _snake(name: str) -> str:
    return name.lower().replace(" ", "_").replace("-", "_")
