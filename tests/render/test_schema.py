"""render/schema.py: jsonschema-rs answers "valid" quickly; jsonschema stays the reference for the verdict and
the messages. These tests pin what the fast path relies on: on the shipped schemas, jsonschema-rs calls
valid only what jsonschema calls valid, and without it (or without its verdict) jsonschema answers alone."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from render.schema import CompiledSchema, compile_schema, schema_errors

PROJECT = Path(__file__).resolve().parents[2]
SCHEMAS = [PROJECT / "render" / "templates" / "minatBakatUmum.schema.json",
           PROJECT / "examples" / "templates" / "gayaBelajar.schema.json"]
EXAMPLE = json.loads((PROJECT / "examples" / "minatBakatUmum.json").read_text(encoding="utf-8"))["data"]
BLANKS = ["", " ", "\t\n", "\u00a0", "\u3000", "\u2003", "\u200b", "\ufeff", "x", " x ", "Ωμέγα", "王小明",
          "\ud800"]  # a lone surrogate (JSON can carry one): no verdict from the fast validator, no error
DATES = ["2026-01-15", "20260115", "2026-1-15", "2026-02-30", "2026-01-15T00:00:00", "15/01/2026", "2026-W03-4"]


def variants() -> list[Any]:
    """The example and mutations of it that touch every keyword the shipped schema uses."""
    found: list[Any] = [EXAMPLE, None, [], "text", 3, {}]
    for blank in BLANKS:
        found.append(copy.deepcopy(EXAMPLE) | {"participant": EXAMPLE["participant"] | {"name": blank}})
    for date in DATES:
        found.append(copy.deepcopy(EXAMPLE) | {"test_date": date})
    for score in (-1, 0, 100, 100.5, 101, "80", True, None, 2**70, 1e308):
        changed = copy.deepcopy(EXAMPLE)
        changed["scales"][0]["score"] = score
        found.append(changed)
    for count in (0, 1, 40, 41):
        found.append(copy.deepcopy(EXAMPLE) | {"scales": [{"name": f"s{n}", "score": 1} for n in range(count)]})
    found.append(copy.deepcopy(EXAMPLE) | {"unknown_field": 1})
    return found


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_the_fast_validator_takes_every_shipped_schema(path: Path) -> None:
    assert compile_schema(json.loads(path.read_text(encoding="utf-8")), path.name).fast is not None


@pytest.mark.parametrize("data", variants())
def test_the_fast_validator_never_calls_valid_what_the_reference_refuses(data: Any) -> None:
    compiled = compile_schema(json.loads(SCHEMAS[0].read_text(encoding="utf-8")), SCHEMAS[0].name)
    if compiled.fast_says_valid(data):  # it may be stricter (U+FEFF is blank to it): then the reference decides
        assert compiled.reference.is_valid(data)
    assert (schema_errors(compiled, data) == []) == compiled.reference.is_valid(data)


def test_without_the_fast_validator_the_reference_answers_alone() -> None:
    compiled = compile_schema(json.loads(SCHEMAS[0].read_text(encoding="utf-8")), SCHEMAS[0].name)
    alone = CompiledSchema(compiled.reference, None)
    assert schema_errors(alone, EXAMPLE) == []
    assert schema_errors(alone, {}) == schema_errors(compiled, {}) != []


def test_a_value_the_fast_validator_cannot_take_goes_to_the_reference() -> None:
    compiled = compile_schema({"type": "object"}, "x.schema.json")
    assert not compiled.fast_says_valid(object())  # it raises on what is not a JSON value: no verdict
    assert schema_errors(compiled, object()) == [{"field": "data", "message": "must be an object"}]
