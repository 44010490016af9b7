"""Pydantic validation errors as `[{"field", "message"}]` in plain language (the API's and the templates')."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

MESSAGES: dict[str, str] = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this request; check the spelling (see /api/docs)",
    "model_type": "must be an object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a list",
    "string_type": "must be a string",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "date_type": "must be a date (YYYY-MM-DD)",
    "date_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "must be a date without a time (YYYY-MM-DD)",
    "timezone_aware": "must include a time zone, e.g. 2026-01-15T10:30:00Z",
    "string_too_short": "must be at least {min_length} characters",
    "string_too_long": "must be at most {max_length} characters",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "literal_error": "must be one of {expected}",
}


def field_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """Every error of `exc` as {"field", "message"}; fields are named from `prefix` ("data" -> "data.x[0].y")."""
    return [{"field": field_path(error["loc"], prefix) or "body", "message": message(error)}
            for error in exc.errors(include_url=False)]


def field_path(loc: Sequence[int | str], prefix: str = "") -> str:
    """Turn a location like ("scales", 2, "score") into "scales[2].score", or "data.scales[2].score" with a prefix."""
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def message(error: Any) -> str:
    """One pydantic error as a short message for the user: known types from MESSAGES, others pydantic's own."""
    ctx = {key: _number(value) for key, value in (error.get("ctx") or {}).items()}
    if error["type"] == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    template = MESSAGES.get(error["type"])
    if template is None:
        return str(error["msg"]).removeprefix("Value error, ")
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):  # a ctx without the placeholder's key: pydantic's text still says it
        return str(error["msg"])


def _number(value: Any) -> Any:
    """Show 100.0 as 100 in messages."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
