"""Validating `data` against a template's JSON Schema, with messages a client can act on.

Templates in TEMPLATES_DIR describe their data with JSON Schema (draft 2020-12). A schema node may carry
`"errorMessage": "..."` to replace the generic message of any error found at that node.

Valid data is the common case (every submit, every batch item): jsonschema-rs answers "valid" in
microseconds where the pure-Python `jsonschema` takes hundreds of them (bench/README.md). `jsonschema`
stays the reference: whatever jsonschema-rs does not call valid (or cannot take) is checked again by
it, and only its errors make the answer, so messages and the final verdict are jsonschema's; the fast
path can only accept data that jsonschema-rs calls valid, and it is at least as strict on the formats
and keywords the schemas use (tests/render/test_schema.py pins that on the shipped schemas).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as SchemaValidationError

from render.base import RenderError
from render.validation import field_path

_TYPE_NAMES = {"string": "a string", "number": "a number", "integer": "an integer", "boolean": "true or false",
               "object": "an object", "array": "a list", "null": "null"}
_FORMAT_NAMES = {"date": "a date (YYYY-MM-DD)", "date-time": "a date and time (ISO 8601)", "email": "an e-mail address",
                 "uri": "a URI"}


@dataclass(frozen=True)
class CompiledSchema:
    """A template's schema, ready to check data: the reference validator and, where it compiles, the fast one."""

    reference: Draft202012Validator
    fast: Any | None  # a jsonschema_rs validator; None when it cannot take the schema

    def fast_says_valid(self, data: object) -> bool:
        """Whether jsonschema-rs calls `data` valid (False when it has no verdict)."""
        if self.fast is None:
            return False
        try:
            return self.fast.is_valid(data)
        except (ValueError, TypeError, OverflowError):  # e.g. an integer beyond 64 bits
            return False


def compile_schema(schema: Any, where: str) -> CompiledSchema:
    """Check that `schema` is a valid JSON Schema and compile it; raise RenderError otherwise."""
    if not isinstance(schema, dict):
        raise RenderError(f"{where}: the schema must be a JSON object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        at = "/".join(str(part) for part in exc.absolute_path) or "(top)"
        raise RenderError(f"{where}: not a valid JSON Schema at {at}: {exc.message}") from None
    reference = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    try:
        fast = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    except (ValueError, jsonschema_rs.ReferencingError):  # a schema only the reference takes (e.g. its regex dialect)
        fast = None
    return CompiledSchema(reference, fast)


def schema_errors(schema: CompiledSchema, data: object) -> list[dict[str, str]]:
    """Return `{"field", "message"}` per problem (one per field, in document order); [] when valid."""
    if schema.fast_says_valid(data):
        return []
    found: dict[str, str] = {}
    for error in sorted(schema.reference.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        for field, message in _describe(error):
            found.setdefault(field, message)
    return [{"field": field, "message": message} for field, message in found.items()]


def _describe(error: SchemaValidationError) -> Iterable[tuple[str, str]]:
    path = list(error.absolute_path)
    custom = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
    if error.validator == "required" and not custom and isinstance(error.instance, dict):
        missing = [key for key in error.validator_value if key not in error.instance]
        return [(field_path([*path, key], "data"), "is required") for key in missing]
    if error.validator == "additionalProperties" and not custom and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = [key for key in error.instance if key not in allowed]
        return [(field_path([*path, key], "data"), "is not allowed here") for key in extra]
    return [(field_path(path, "data"), custom or _message(error))]


def _message(error: SchemaValidationError) -> str:
    """One short message per JSON Schema keyword; the library's own text for the rest."""
    keyword, expected = error.validator, error.validator_value
    messages = {
        "type": lambda: "must be " + " or ".join(_TYPE_NAMES.get(t, t) for t in _as_list(expected)),
        "minimum": lambda: f"must be at least {_number(expected)}",
        "maximum": lambda: f"must be at most {_number(expected)}",
        "exclusiveMinimum": lambda: f"must be more than {_number(expected)}",
        "exclusiveMaximum": lambda: f"must be less than {_number(expected)}",
        "minLength": lambda: "must not be empty" if expected == 1 else f"must be at least {expected} characters",
        "maxLength": lambda: f"must be at most {expected} characters",
        "minItems": lambda: f"must have at least {expected} item(s)",
        "maxItems": lambda: f"must have at most {expected} item(s)",
        "enum": lambda: "must be one of " + ", ".join(repr(v) for v in expected),
        "const": lambda: f"must be {expected!r}",
        "format": lambda: "must be " + _FORMAT_NAMES.get(expected, f"in {expected} format"),
        "pattern": lambda: "must not be blank" if expected == r"\S" else f"must match the pattern {expected}",
    }
    describe = messages.get(keyword)
    return describe() if describe is not None else error.message


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value
