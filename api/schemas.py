"""Request parsing and validation: every bad field is named with what is expected."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from string import ascii_letters, digits
from typing import Annotated, Any, Literal

from flask import request
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError
from werkzeug.exceptions import HTTPException

from api.errors import ValidationError
from api.json_reader import JsonBodyError, parse_json
from render.form_template import PRODUCT_ID_PATTERN
from render.validation import field_errors

log = logging.getLogger(__name__)

# `code` and `productId` become part of file names, download headers and storage keys: a fixed alphabet.
CODE_MAX = 128
CODE_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{CODE_MAX - 1}}}$")
CODE_RULE = f"letters A-Z a-z, digits, '-', '_' and '.', starting with a letter or digit, at most {CODE_MAX}"
PRODUCT_RULE = "letters A-Z a-z, digits, '-' and '_', starting with a letter, at most 64"
RUN_AT_HORIZON_DAYS = 365
_DATE_TIME = re.compile(r"\s*\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")  # the start of an ISO 8601 date-time


def _identifier(pattern: re.Pattern[str], chars: str, rule: str, max_length: int) -> Any:
    """A string type matching `pattern` whole; its error names the first character outside `chars`."""
    allowed = frozenset(chars)

    def check(value: str) -> str:
        if pattern.fullmatch(value):  # fullmatch: `$` alone would let a trailing newline through
            return value
        wrong = next((ch for ch in value if ch not in allowed), None)
        found = f"contains {wrong!r} (U+{ord(wrong):04X}); " if wrong is not None else ""
        raise ValueError(f"{found}use only {rule} characters")

    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length),
                     AfterValidator(check), Field(json_schema_extra={"pattern": pattern.pattern})]


def _date_time_text(value: object) -> object:
    """Only ISO 8601 date-time strings: pydantic would also take a number (or a digit string) as Unix time."""
    if isinstance(value, datetime) or (isinstance(value, str) and _DATE_TIME.match(value)):
        return value
    raise ValueError("must be an ISO 8601 date-time with a time zone, e.g. 2026-01-15T10:30:00Z (not a Unix time)")


def _in_utc(value: datetime) -> datetime:
    """The date-time in UTC; a 400 when it has none (SQL and comparisons would raise OverflowError)."""
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-23:59 is in the year 10000 in UTC
        raise ValueError("has no UTC equivalent (out of range); use a date in the years 1-9999 in UTC") from None


def _within_horizon(value: datetime) -> datetime:
    """runAt refused beyond RUN_AT_HORIZON_DAYS from now."""
    if value > datetime.now(UTC) + timedelta(days=RUN_AT_HORIZON_DAYS):
        raise ValueError(f"is more than {RUN_AT_HORIZON_DAYS} days from now ({value:%Y-%m-%d}); "
                         f"schedule a job at most {RUN_AT_HORIZON_DAYS} days ahead")
    return value


Code = _identifier(CODE_PATTERN, ascii_letters + digits + "-_.", CODE_RULE, CODE_MAX)
ProductId = _identifier(PRODUCT_ID_PATTERN, ascii_letters + digits + "-_", PRODUCT_RULE, 64)
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]
# An ISO 8601 date-time with a time zone, in UTC (query filters too); runAt is bounded as well.
DateTime = Annotated[AwareDatetime, BeforeValidator(_date_time_text), AfterValidator(_in_utc)]
RunAt = Annotated[DateTime, AfterValidator(_within_horizon)]


class SubmitBody(BaseModel):
    """The body of POST /api/reports/generate-async and /generate (SPEC.md)."""

    model_config = ConfigDict(extra="forbid")

    code: Code = Field(description=f"Report identifier, e.g. the test code: {CODE_RULE} characters")
    productId: ProductId = Field(description="Product (template) id, e.g. minatBakatUmum")  # noqa: N815
    priority: Literal["high", "normal", "low"] = "normal"
    callback: Url | None = Field(None, description="Success webhook URL")
    failureCallback: Url | None = Field(None, description="Failure webhook URL")  # noqa: N815
    data: dict[str, Any] | None = Field(None, description="Inline report data (see GET /api/templates)")
    runAt: RunAt | None = Field(  # noqa: N815
        None, description=f"ISO 8601 with time zone, at most {RUN_AT_HORIZON_DAYS} days ahead; run the job then")


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    raw = request_bytes()
    if not raw:
        raise ValidationError("The request body is empty; send a JSON object.")
    try:
        body = parse_json(raw)
    except JsonBodyError as exc:
        raise ValidationError(
            f"The request body is refused: {exc}; send a JSON object with Content-Type: application/json.",
            error="invalid_json", details=[{"field": "body", "message": str(exc)}],
        ) from None
    if not isinstance(body, dict):
        raise ValidationError("The request body must be a JSON object.", error="invalid_json")
    return body


def request_bytes() -> bytes:
    """The whole request body; a body the server cannot read to its end (broken framing) is a 400."""
    try:
        return request.get_data(cache=True)
    except HTTPException:  # 413 over MAX_BODY_BYTES, 400 for a client gone mid-body: werkzeug's own answers
        raise
    except Exception as exc:  # noqa: BLE001 - each WSGI server has its own errors (gunicorn: InvalidChunkSize)
        log.info("event=body_unreadable type=%s", type(exc).__name__)
        raise ValidationError(
            "The request body could not be read: its framing is broken (e.g. a malformed chunked "
            "Transfer-Encoding, or fewer bytes than Content-Length); send the body again, whole.",
            error="malformed_body",
        ) from None


def parse_submit(body: dict[str, Any]) -> SubmitBody:
    """Validate a submit body; a 400 lists every bad field."""
    try:
        return SubmitBody.model_validate(body)
    except PydanticValidationError as exc:
        raise ValidationError(
            "The request has invalid fields; see details.", details=field_errors(exc)
        ) from None
