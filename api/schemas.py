"""Request parsing and validation: every bad field is named with what is expected."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from flask import request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from api.errors import ValidationError
from render.validation import field_errors

Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]


class SubmitBody(BaseModel):
    """The body of POST /api/reports/generate-async and /generate (SPEC.md)."""

    model_config = ConfigDict(extra="forbid")

    code: Code = Field(description="Report identifier, e.g. the test code")
    productId: Code = Field(description="Product (template) id, e.g. minatBakatUmum")  # noqa: N815
    priority: Literal["high", "normal", "low"] = "normal"
    callback: Url | None = Field(None, description="Success webhook URL")
    failureCallback: Url | None = Field(None, description="Failure webhook URL")  # noqa: N815
    data: dict[str, Any] | None = Field(None, description="Inline report data (see GET /api/templates)")
    runAt: AwareDatetime | None = Field(None, description="ISO 8601 with time zone; run the job then")  # noqa: N815


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    raw = request.get_data(cache=True)
    if not raw:
        raise ValidationError("The request body is empty; send a JSON object.")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(
            f"The request body is not valid JSON: {getattr(exc, 'msg', str(exc))}; "
            "send a JSON object with Content-Type: application/json.",
            error="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise ValidationError("The request body must be a JSON object.", error="invalid_json")
    return body


def parse_submit(body: dict[str, Any]) -> SubmitBody:
    """Validate a submit body; a 400 lists every bad field."""
    try:
        return SubmitBody.model_validate(body)
    except PydanticValidationError as exc:
        raise ValidationError(
            "The request has invalid fields; see details.", details=field_errors(exc)
        ) from None
