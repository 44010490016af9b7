"""Hostile or careless input (issue 18): every case is a 400 naming the problem, never a 500 or a 202."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from store.models import JobRecord
from tests.conftest import auth, run_jobs, sample_request

pytestmark = pytest.mark.sqlite_only  # not about SQL: SQLite only (tests/conftest.py)

ASYNC = "/api/reports/generate-async"
SYNC = "/api/reports/generate"
JSON = {"Content-Type": "application/json"}


def post_raw(client, text: str | bytes, url: str = ASYNC):  # noqa: ANN001, ANN201
    return client.post(url, data=text, headers=auth() | JSON)


def field_messages(response) -> dict[str, str]:  # noqa: ANN001
    assert response.status_code == 400, (response.status_code, response.get_data(as_text=True)[:300])
    return {detail["field"]: detail["message"] for detail in response.json["details"]}


@pytest.mark.parametrize(("field", "expected"), [
    ("code", "must be a string"), ("priority", "must be one of"), ("runAt", "ISO 8601 date-time"),
])
def test_a_twelve_digit_number_in_a_string_field_is_400(client, field: str, expected: str) -> None:
    response = client.post(ASYNC, json=sample_request() | {field: 999999999999}, headers=auth())
    assert expected in field_messages(response)[field]


@pytest.mark.parametrize("run_at", [1800000000, "1800000000", 1800000000.5, "1800000000.5"])
def test_run_at_as_unix_time_is_400(client, run_at: object) -> None:
    response = client.post(ASYNC, json=sample_request() | {"runAt": run_at}, headers=auth())
    assert "not a Unix time" in field_messages(response)["runAt"]


@pytest.mark.parametrize(("run_at", "expected"), [
    ("9999-12-31T23:59:59Z", "365 days ahead"), ("9999-12-31T23:59:59+23:59", "365 days ahead"),
    ("9999-12-31T23:59:59-23:59", "out of range"), ("0001-01-01T00:00:00+23:59", "out of range"),
])
def test_run_at_at_the_ends_of_the_calendar_is_400(client, run_at: str, expected: str) -> None:
    response = client.post(ASYNC, json=sample_request() | {"runAt": run_at}, headers=auth())
    assert expected in field_messages(response)["runAt"]


@pytest.mark.parametrize(("query", "expected"), [
    ("created_after=9999-12-31T23:59:59-23:59", "out of range"), ("created_before=0001-01-01T00:00:00%2B23:59",
                                                                  "out of range"),
    ("created_after=1800000000", "not a Unix time"),
])
def test_list_dates_out_of_range_or_as_unix_time_are_400(client, query: str, expected: str) -> None:
    response = client.get(f"/api/jobs?{query}", headers=auth())
    assert expected in field_messages(response)[query.split("=")[0]]


def test_run_at_is_bounded_to_a_year_and_any_offset_is_taken(client) -> None:
    later = datetime.now(UTC) + timedelta(days=366)
    response = client.post(ASYNC, json=sample_request() | {"runAt": later.isoformat()}, headers=auth())
    assert "more than 365 days from now" in field_messages(response)["runAt"]
    soon = (datetime.now(UTC) + timedelta(days=300)).astimezone().replace(microsecond=0)
    for offset in ("-23:59", "+14:00", "+05:45"):
        text = soon.strftime("%Y-%m-%dT%H:%M:%S") + offset
        accepted = client.post(ASYNC, json=sample_request() | {"code": f"c{offset[1:3]}", "runAt": text},
                               headers=auth())
        assert accepted.status_code == 202 and accepted.json["status"] == "scheduled", accepted.json


@pytest.mark.parametrize("where", ["top", "data"])
def test_a_5000_digit_number_is_400(client, where: str) -> None:
    body = json.dumps(sample_request())
    number = "9" * 5000
    if where == "top":
        text = body[:-1] + f', "x": {number}}}'
    else:
        text = body.replace('"raw_score": 18', f'"raw_score": {number}')
    response = post_raw(client, text)
    assert response.status_code == 400 and response.json["error"] == "invalid_json"
    assert "5000 characters" in response.json["message"]
    assert "send long identifiers as strings" in response.json["message"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_numbers_json_does_not_have_are_400(client, literal: str) -> None:
    text = json.dumps(sample_request()).replace('"raw_score": 18', f'"raw_score": {literal}')
    response = post_raw(client, text)
    assert response.status_code == 400 and response.json["error"] == "invalid_json", response.json


@pytest.mark.parametrize("url", [ASYNC, SYNC])
@pytest.mark.parametrize("depth", [10_000, 50_000])
def test_json_nested_thousands_deep_is_400_on_both_endpoints(client, url: str, depth: int) -> None:
    for opening, closing in (("[", "]"), ('{"a":', "}")):
        response = post_raw(client, '{"data": ' + opening * depth + "1" + closing * depth + "}", url)
        assert response.status_code == 400 and response.json["error"] == "invalid_json"
        assert "nested more than 32 levels" in response.json["message"]


def test_brackets_inside_strings_do_not_count_as_nesting(client) -> None:
    body = sample_request()
    body["data"]["summary"] = "[" * 3000 + '{"\\"[' * 100
    assert client.post(ASYNC, json=body, headers=auth()).status_code == 202


def test_a_body_that_is_not_utf8_is_400(client) -> None:
    response = post_raw(client, json.dumps(sample_request()).encode("utf-16"))
    assert response.status_code == 400 and "not UTF-8" in response.json["message"]


@pytest.mark.parametrize(
    "code", ["a\r\nSet-Cookie: x=1", "a\nb", "../../x", "a/b", "a\\b", ".hidden", "a b", "ü", "x" * 129])
def test_a_code_outside_the_alphabet_is_400_naming_the_field(client, code: str) -> None:
    response = client.post(ASYNC, json=sample_request() | {"code": code}, headers=auth())
    message = field_messages(response)["code"]
    assert "letters A-Z a-z, digits" in message or "at most 128 characters" in message


@pytest.mark.parametrize("product_id", ["../minatBakatUmum", "minat\r\nBakat", "1abc", "a" * 65])
def test_a_product_id_outside_the_alphabet_is_400_naming_the_field(client, product_id: str) -> None:
    response = client.post(ASYNC, json=sample_request() | {"productId": product_id}, headers=auth())
    assert "productId" in field_messages(response)


@pytest.mark.parametrize("name", ["minatBakatUmum", "formulirPersetujuan"])
def test_sample_requests_are_accepted(client, name: str) -> None:
    assert client.post(ASYNC, json=sample_request(name), headers=auth()).status_code == 202


@pytest.mark.parametrize("url", [
    "http://127.0.0.1\t/hook", "http://12\t7.0.0.1/hook", "http://１２７.０.０.１/hook", "http://①②⑦.0.0.1/hook",
    "http://127.0.0.1/ho\rok", "http://127.0.0.1/ho\nok", "http://127.0.0.1/ho\x00ok", "http://127.0.0.1/a b",
])
def test_a_callback_url_the_sender_could_not_use_is_refused_at_submit(client, url: str) -> None:
    for field in ("callback", "failureCallback"):
        response = client.post(ASYNC, json=sample_request() | {field: url}, headers=auth())
        assert response.status_code == 400 and response.json["error"] == "invalid_callback"
        assert field in field_messages(response)


def test_download_name_of_an_old_job_with_a_hostile_code_has_no_directory_or_header_break(client, runtime) -> None:
    job_id = client.post(ASYNC, json=sample_request(), headers=auth()).json["job_id"]
    run_jobs(runtime)
    for code, expected in [("../../x", 'filename=minatBakatUmum_.._.._x.pdf'),
                           ("a\r\nSet-Cookie: s=1", "filename=minatBakatUmum_a__Set-Cookie__s_1.pdf")]:
        _set_code(runtime, job_id, code)
        response = client.get(f"/api/jobs/{job_id}/download", headers=auth())
        assert response.status_code == 200 and "Set-Cookie" not in response.headers
        assert response.headers["Content-Disposition"] == f"attachment; {expected}"


def test_download_name_keeps_unicode_in_filename_star_with_an_ascii_fallback(client, runtime) -> None:
    job_id = client.post(ASYNC, json=sample_request(), headers=auth()).json["job_id"]
    run_jobs(runtime)
    _set_code(runtime, job_id, "Çelik/\u202etxt.exe")
    disposition = client.get(f"/api/jobs/{job_id}/download", headers=auth()).headers["Content-Disposition"]
    assert disposition == ("attachment; filename=minatBakatUmum_Celik__txt.exe.pdf; "
                           "filename*=UTF-8''minatBakatUmum_%C3%87elik__txt.exe.pdf")


def _set_code(runtime, job_id: str, code: str) -> None:  # noqa: ANN001
    """Give a job a code the API no longer accepts, as a job recorded before the check would have."""
    with runtime.session() as session:
        session.execute(update(JobRecord).where(JobRecord.job_id == job_id).values(code=code))
        session.commit()
