"""The one translator of pydantic errors: field paths and plain-language messages."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from render.validation import field_errors, field_path


def _positive(value: int) -> int:
    if value <= 0:
        raise ValueError("must be positive")
    return value


class Item(BaseModel):
    score: float = Field(ge=0, le=100)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=5)
    tag: str = Field("x", min_length=3)
    kind: Literal["a", "b"] = "a"
    items: list[Item] = Field(default_factory=list, max_length=2)
    when: AwareDatetime | None = None
    count: Annotated[int, AfterValidator(_positive)] = 1


def errors_of(data: object, prefix: str = "") -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as info:
        Body.model_validate(data)
    return field_errors(info.value, prefix)


@pytest.mark.parametrize(
    ("loc", "prefix", "path"),
    [
        (("scales", 2, "score"), "data", "data.scales[2].score"),
        (("scales", 2, "score"), "", "scales[2].score"),
        ((), "data", "data"),
        ((0, "x"), "", "[0].x"),
    ],
)
def test_field_path_joins_names_and_indexes(loc, prefix, path) -> None:
    assert field_path(loc, prefix) == path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"name": ""}, {"name": "must not be empty"}),
        ({"name": "toolong"}, {"name": "must be at most 5 characters"}),
        ({"name": 5}, {"name": "must be a string"}),
        ({"tag": "ab"}, {"tag": "must be at least 3 characters"}),
        ({"kind": "c"}, {"kind": "must be one of 'a' or 'b'"}),
        ({"items": [{"score": 100.5}]}, {"items[0].score": "must be at most 100"}),
        ({"items": [{"score": "x"}]}, {"items[0].score": "must be a number"}),
        ({"items": [{"score": 1}] * 3}, {"items": "must have at most 2 item(s)"}),
        ({"items": {"score": 1}}, {"items": "must be a list"}),
        ({"when": "2026-01-15T10:30:00"}, {"when": "must include a time zone, e.g. 2026-01-15T10:30:00Z"}),
        ({"count": 0}, {"count": "must be positive"}),
        ({"colour": "red"}, {"colour": "is not a field of this request; check the spelling (see /api/docs)"}),
    ],
)
def test_field_errors_speak_plainly(change: dict, expected: dict) -> None:
    errors = errors_of({"name": "ok"} | change)
    assert {e["field"]: e["message"] for e in errors} == expected


def test_field_errors_list_every_missing_field_under_the_prefix() -> None:
    assert errors_of({}, prefix="data") == [{"field": "data.name", "message": "is required"}]


def test_field_errors_name_the_body_when_it_is_not_an_object() -> None:
    assert errors_of([1]) == [{"field": "body", "message": "must be an object"}]
