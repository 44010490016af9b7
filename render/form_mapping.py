"""Field mapping of a fillable PDF form: which data path fills which form field, and how."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
FieldType = Literal["text", "date", "checkbox", "number"]
_MISSING = object()


class FieldSpec(BaseModel):
    """How one form field is filled: the data path, the type and its output options."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(pattern=PATH_PATTERN, description='Dotted path in `data`, e.g. "participant.name".')
    type: FieldType = "text"
    required: bool = False
    description: str | None = None
    format: str | None = Field(default=None, description='date: strftime pattern (default "%d/%m/%Y"); '
                               'number: format spec (default: no needless decimals).')
    on_value: str = Field(default="/Yes", pattern=r"^/\S+$", description="checkbox: the appearance state for true.")
    max_length: int = Field(default=200, ge=1, le=10000, description="text: longest accepted value.")
    minimum: float | None = None
    maximum: float | None = None

    @model_validator(mode="after")
    def _format_usable(self) -> FieldSpec:
        if self.type == "number" and self.format:
            format_number(1.5, self.format)  # raises ValueError on a bad format spec
        return self

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of the value this field takes."""
        schema: dict[str, Any] = {
            "text": {"type": "string", "maxLength": self.max_length},
            "date": {"type": "string", "format": "date"},
            "checkbox": {"type": "boolean"},
            "number": {"type": "number"},
        }[self.type]
        if self.type == "number":
            schema |= {k: v for k, v in (("minimum", self.minimum), ("maximum", self.maximum)) if v is not None}
        if self.description:
            schema["description"] = self.description
        return schema


class FormMapping(BaseModel):
    """The `<productId>.json` file that sits next to `<productId>.pdf`."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    flatten: bool = Field(default=True, description="Draw the values into the pages and remove the form "
                          "(false keeps the fields editable).")
    fields: dict[str, FieldSpec] = Field(min_length=1, description="Form field name -> how to fill it.")
    example: dict[str, Any] | None = Field(default=None, description="Sample data, rendered by a preview "
                                           "that sends none.")

    @model_validator(mode="after")
    def _paths_consistent(self) -> FormMapping:
        leaves = {spec.path: spec.type for spec in self.fields.values()}
        for spec in self.fields.values():
            if leaves[spec.path] != spec.type:
                raise ValueError(f"path {spec.path!r} is mapped with two different types")
            parts = spec.path.split(".")
            for i in range(1, len(parts)):
                if ".".join(parts[:i]) in leaves:
                    raise ValueError(f"path {'.'.join(parts[:i])!r} is both a value and a parent of {spec.path!r}")
        return self

    def on_values(self) -> dict[str, str]:
        """Each checkbox field's "on" state name (such as /Yes), by field name."""
        return {name: spec.on_value for name, spec in self.fields.items() if spec.type == "checkbox"}


def data_schema(mapping: FormMapping, title: str) -> dict[str, Any]:
    """Derive the JSON Schema of a form's `data` from its mapping."""
    root: dict[str, Any] = {"type": "object", "title": title, "properties": {}, "required": []}
    for spec in mapping.fields.values():
        node = root
        parts = spec.path.split(".")
        for part in parts[:-1]:
            if spec.required and part not in node["required"]:
                node["required"].append(part)
            node = node["properties"].setdefault(part, {"type": "object", "properties": {}, "required": []})
        node["properties"][parts[-1]] = spec.json_schema()
        if spec.required and parts[-1] not in node["required"]:
            node["required"].append(parts[-1])
    _drop_empty_required(root)
    return root


def _drop_empty_required(node: dict[str, Any]) -> None:
    if node.get("required") == []:
        del node["required"]
    for child in node.get("properties", {}).values():
        _drop_empty_required(child)


def lookup(data: dict[str, Any], path: str) -> tuple[Any, str | None]:
    """Return (value, None), (_MISSING, None) or (_MISSING, error) for a dotted path."""
    current: Any = data
    walked = "data"
    for part in path.split("."):
        if not isinstance(current, dict):
            return _MISSING, f"{walked}: must be an object"
        if current.get(part) is None:
            return _MISSING, None
        current, walked = current[part], f"{walked}.{part}"
    return current, None


def parse_date(value: str) -> dt.date:
    """Parse an ISO date or date-time string; raise ValueError otherwise."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return dt.datetime.fromisoformat(value).date()


def check_value(spec: FieldSpec, value: Any) -> str | None:
    """Return an error message when `value` does not fit the field, else None."""
    if spec.type == "text":
        if not isinstance(value, str):
            return "must be a string"
        if spec.required and not value.strip():
            return "must not be empty"
        return f"must be at most {spec.max_length} characters" if len(value) > spec.max_length else None
    if spec.type == "checkbox":
        return None if isinstance(value, bool) else "must be true or false"
    if spec.type == "date":
        try:
            parse_date(value if isinstance(value, str) else "")
        except ValueError:
            return "must be a date (YYYY-MM-DD)"
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "must be a number"
    if spec.minimum is not None and value < spec.minimum:
        return f"must be at least {format_number(spec.minimum, None)}"
    if spec.maximum is not None and value > spec.maximum:
        return f"must be at most {format_number(spec.maximum, None)}"
    return None


def format_number(value: float, spec: str | None) -> str:
    """Format a number with a format spec, or without needless decimals."""
    if spec:
        return format(value, spec)
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def validate_values(mapping: FormMapping, data: object) -> list[dict[str, str]]:
    """Return the field errors of `data` against the mapping."""
    if not isinstance(data, dict):
        return [{"field": "data", "message": "must be an object"}]
    errors: dict[str, str] = {}
    for spec in mapping.fields.values():
        value, error = lookup(data, spec.path)
        field = f"data.{spec.path}"
        if error:
            where, message = error.split(": ", 1)
            errors.setdefault(where, message)
        elif value is _MISSING:
            if spec.required:
                errors.setdefault(field, "is required")
        elif (message := check_value(spec, value)) is not None:
            errors.setdefault(field, message)
    return [{"field": f, "message": m} for f, m in errors.items()]


def pdf_values(mapping: FormMapping, data: dict[str, Any]) -> dict[str, str]:
    """Turn valid `data` into form field values (checkboxes as appearance state names)."""
    values: dict[str, str] = {}
    for name, spec in mapping.fields.items():
        value, _ = lookup(data, spec.path)
        if spec.type == "checkbox":
            values[name] = spec.on_value if value is True else "/Off"
        elif value is _MISSING:
            values[name] = ""
        elif spec.type == "date":
            values[name] = parse_date(value).strftime(spec.format or "%d/%m/%Y")
        elif spec.type == "number":
            values[name] = format_number(value, spec.format)
        else:
            values[name] = value
    return values
