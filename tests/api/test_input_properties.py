"""Property tests (hypothesis) of what reads client input: the request model, the JSON reader, the URL parser.

Each answers any input with a parsed value or its own 400-style error, never another exception, and
what it accepts keeps the promises the rest of the service relies on.
"""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from api.errors import ValidationError
from api.json_reader import MAX_DEPTH, JsonBodyError, nesting_depth, parse_json
from api.schemas import CODE_PATTERN, RUN_AT_HORIZON_DAYS, SubmitBody, parse_submit
from callbacks.url_policy import CallbackTarget, CallbackUrlError, parse_callback_url
from render.form_template import PRODUCT_ID_PATTERN

FIELDS = list(SubmitBody.model_fields)
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | ANY_TEXT
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner,
                                                                                                max_size=4),
                           max_leaves=20)
offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda minutes: timezone(timedelta(minutes=minutes)))
date_times = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=offsets)
run_at_values = (date_times.map(datetime.isoformat) | st.integers() | st.floats() | ANY_TEXT
                 | st.integers(0, 10**12).map(str))
field_values = {
    "code": st.from_regex(CODE_PATTERN, fullmatch=True) | ANY_TEXT | st.integers() | json_values,
    "productId": st.sampled_from(["minatBakatUmum", "formulirPersetujuan"]) | ANY_TEXT | json_values,
    "priority": st.sampled_from(["high", "normal", "low"]) | ANY_TEXT | st.integers(),
    "runAt": run_at_values | st.none(),
    "callback": ANY_TEXT | st.none() | st.integers(),
    "failureCallback": ANY_TEXT | st.none(),
    "data": json_values,
}
bodies = st.fixed_dictionaries({}, optional={name: field_values[name] for name in FIELDS}).flatmap(
    lambda body: st.dictionaries(ANY_TEXT, json_values, max_size=2).map(lambda extra: extra | body))


@settings(max_examples=400, deadline=None, database=None)
@given(body=bodies)
def test_request_model_answers_every_body_with_a_model_or_a_400(body: dict[str, Any]) -> None:
    try:
        parsed = parse_submit(body)
    except ValidationError as exc:
        assert exc.status_code == 400 and exc.details and all(d["field"] and d["message"] for d in exc.details)
        return
    assert CODE_PATTERN.fullmatch(parsed.code) and PRODUCT_ID_PATTERN.fullmatch(parsed.productId)
    if parsed.runAt is not None:
        assert parsed.runAt.tzinfo == UTC
        assert parsed.runAt <= datetime.now(UTC) + timedelta(days=RUN_AT_HORIZON_DAYS)


@settings(max_examples=300, deadline=None, database=None)
@given(run_at=date_times)
def test_every_date_time_with_any_offset_is_accepted_in_utc_or_refused_with_a_400(run_at: datetime) -> None:
    body = {"code": "c1", "productId": "minatBakatUmum", "runAt": run_at.isoformat()}
    try:
        parsed = parse_submit(body)
    except ValidationError as exc:
        assert [d["field"] for d in exc.details] == ["runAt"]
        return
    assert parsed.runAt is not None and parsed.runAt.tzinfo == UTC and parsed.runAt == run_at


@settings(max_examples=300, deadline=None, database=None)
@given(raw=st.binary(max_size=200) | ANY_TEXT.map(str.encode))
def test_json_reader_answers_any_bytes_with_a_value_or_its_error(raw: bytes) -> None:
    try:
        parse_json(raw)
    except JsonBodyError as exc:
        assert str(exc)


@settings(max_examples=300, deadline=None, database=None)
@given(value=json_values)
def test_json_reader_reads_what_json_writes_and_measures_its_depth(value: Any) -> None:
    text = json.dumps(value)
    try:
        parsed = parse_json(text.encode())
    except JsonBodyError as exc:  # only a number literal past the length limit may be refused
        assert "characters (at most" in str(exc)
        return
    assert parsed == value and nesting_depth(text) == _depth(value)


@settings(max_examples=100, deadline=None, database=None)
@given(value=json_values, extra=st.integers(1, 2000), brackets=st.sampled_from(["[]", "{}"]))
def test_json_reader_refuses_any_document_deeper_than_the_limit(value: Any, extra: int, brackets: str) -> None:
    depth = MAX_DEPTH + extra
    wrap = ('{"k":' * depth, "}" * depth) if brackets == "{}" else ("[" * depth, "]" * depth)
    try:
        parse_json((wrap[0] + json.dumps(value) + wrap[1]).encode())
    except JsonBodyError as exc:
        assert "nested more than" in str(exc)
    else:
        raise AssertionError("a document nested past the limit was parsed")


URL_CHARS = st.characters(codec="utf-8") | st.sampled_from(list(string.printable + "\u00a0\u200b\uff11\u2460\u3002"))
urls = (st.text(URL_CHARS, max_size=60) | st.tuples(st.sampled_from(["http://", "https://", "HTTP://"]),
        st.text(URL_CHARS, max_size=25), st.text(URL_CHARS, max_size=30)).map("".join))


@settings(max_examples=500, deadline=None, database=None)
@given(url=urls)
def test_url_parser_answers_any_text_with_a_target_or_its_error(url: str) -> None:
    try:
        target = parse_callback_url(url)
    except CallbackUrlError as exc:
        assert str(exc)
        return
    assert isinstance(target, CallbackTarget) and target.scheme in ("http", "https") and 0 < target.port < 65536
    assert target.host.isascii() and target.host_header.isascii() and target.request_uri.startswith("/")
    assert all(ch in "-._~!$&'()*+,;=:@/?%" or ch.isalnum() and ch.isascii() for ch in target.request_uri)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0
