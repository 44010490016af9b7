"""Parsing a JSON request body within limits on nesting depth and number length (size is MAX_BODY_BYTES).

`json.loads` recurses once per nesting level, so a body nested 10,000 deep raises RecursionError, and a
5000-digit integer raises ValueError (Python's int/str conversion limit): both are client mistakes and
must be a 400. So the depth is measured before parsing, by counting brackets outside strings (fast:
regular expressions and `accumulate`, no Python loop per character), and every number literal goes
through `parse_int` / `parse_float` hooks that bound its length. NaN and Infinity, which `json.loads`
accepts but JSON does not have, are refused too.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 32  # objects and arrays inside each other; report data needs about 5
MAX_NUMBER_CHARS = 40  # digits, sign, point and exponent of one number literal

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonBodyError(ValueError):
    """A body that is not JSON, or JSON beyond the limits; the message says which and how to fix it."""


def parse_json(raw: bytes) -> Any:
    """The JSON value of a UTF-8 body, or JsonBodyError naming the problem."""
    try:
        text = raw.decode("utf-8-sig")  # a leading byte order mark is tolerated, as json.loads(bytes) did
    except UnicodeDecodeError as exc:
        raise JsonBodyError(f"the body is not UTF-8 (invalid byte at position {exc.start}); send UTF-8 JSON") from None
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        raise JsonBodyError(f"the JSON is nested more than {MAX_DEPTH} levels deep; send a flatter document")
    try:
        return json.loads(text, parse_int=_integer, parse_float=_decimal, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise JsonBodyError(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in a JSON text (brackets inside strings do not count)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _checked_length(literal: str) -> str:
    if len(literal) > MAX_NUMBER_CHARS:
        raise JsonBodyError(
            f"a number in the body has {len(literal)} characters (at most {MAX_NUMBER_CHARS}): "
            f"{literal[:20]}...; send long identifiers as strings"
        )
    return literal


def _integer(literal: str) -> int:
    return int(_checked_length(literal))


def _decimal(literal: str) -> float:
    value = float(_checked_length(literal))
    if not math.isfinite(value):
        raise JsonBodyError(f"the number {literal} is too large for a 64-bit float; send a smaller number")
    return value


def _constant(name: str) -> float:
    raise JsonBodyError(f"{name} is not JSON; send a number or null")
