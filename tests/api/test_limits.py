"""Rate limits and quotas on a real Redis: per client, per-client overrides, the cap of queued + scheduled jobs,
failed authentications per source address, and failing open while Redis is down."""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from api import create_app
from config import ClientConfig
from jobs.runtime import Runtime
from tests.api.openapi_support import variant_app, variant_runtime
from tests.conftest import CLIENT_A, CLIENT_B, CLIENTS, auth, sample_request, unreachable_redis

SUBMIT = "/api/reports/generate-async"
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def submit(client, code: str, who: ClientConfig = CLIENT_A, **extra):  # noqa: ANN001, ANN201
    return client.post(SUBMIT, json=sample_request() | {"code": code} | extra, headers=auth(who))


def later() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")


def test_rate_limit_answers_429_with_retry_after_and_ratelimit_headers(runtime: Runtime) -> None:
    client = variant_app(runtime, rate_limit="3/minute", rate_limit_pause=0).test_client()
    answers = [client.get("/api/jobs", headers=auth()) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert all("RateLimit-Limit" not in a.headers for a in answers[:3])  # a 429 carries them
    refused = answers[-1]
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.json["error"] == "rate_limited" and "acme" in refused.json["message"]
    assert refused.headers["RateLimit-Limit"] == "3"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60 and 0 <= int(refused.headers["RateLimit-Reset"]) <= 60
    other = [client.get("/api/jobs", headers=auth(CLIENT_B)).status_code for _ in range(4)]
    assert other == [200, 200, 200, 429]  # every client has its own budget


def test_rate_limit_is_shared_by_every_api_process(runtime: Runtime) -> None:
    first, second = (variant_app(runtime, rate_limit="2/minute", rate_limit_pause=0).test_client() for _ in range(2))
    assert first.get("/api/jobs", headers=auth()).status_code == 200
    assert second.get("/api/jobs", headers=auth()).status_code == 200
    assert first.get("/api/jobs", headers=auth()).status_code == 429  # the count lives in Redis


def test_a_client_may_carry_its_own_rate_limit(runtime: Runtime) -> None:
    generous = ClientConfig(name=CLIENT_A.name, api_key=CLIENT_A.api_key, webhook_secret=CLIENT_A.webhook_secret,
                            rate_limit="5/minute")
    app = variant_app(runtime, rate_limit="1/minute", api_clients=(generous, CLIENT_B), rate_limit_pause=0)
    client = app.test_client()
    assert [client.get("/api/jobs", headers=auth()).status_code for _ in range(6)] == [200] * 5 + [429]
    assert [client.get("/api/jobs", headers=auth(CLIENT_B)).status_code for _ in range(2)] == [200, 429]


def test_refusals_are_held_up_to_rate_limit_pause_and_then_answered_from_the_process(runtime: Runtime) -> None:
    client = variant_app(runtime, rate_limit="1/minute", rate_limit_pause=0.3).test_client()
    assert client.get("/api/jobs", headers=auth()).status_code == 200
    for _ in range(2):  # the limiter's refusal, then the process's own (no Redis asked)
        started = time.monotonic()
        refused = client.get("/api/jobs", headers=auth())
        assert time.monotonic() - started >= 0.3  # held, not timed: sleep never returns early
        assert refused.status_code == 429 and refused.json["error"] == "rate_limited"
        assert all(header in refused.headers for header in (*RATE_HEADERS, "Retry-After"))
    assert refused.headers["RateLimit-Remaining"] == "0" and refused.headers["RateLimit-Limit"] == "1"


def test_public_endpoints_and_requests_without_a_client_are_not_rate_limited(runtime: Runtime) -> None:
    client = variant_app(runtime, rate_limit="1/minute").test_client()
    assert {client.get("/healthz").status_code for _ in range(5)} == {200}
    assert {client.get("/api/jobs").status_code for _ in range(5)} == {401}
    assert "RateLimit-Limit" not in client.get("/healthz").headers


def test_client_cap_counts_queued_and_scheduled_jobs(runtime: Runtime) -> None:
    client = variant_app(runtime, max_queued_per_client=2, rate_limit_pause=0).test_client()
    assert submit(client, "one").status_code == 202
    assert submit(client, "two", runAt=later()).json["status"] == "scheduled"
    refused = submit(client, "three")
    assert refused.status_code == 429 and refused.json["error"] == "client_queue_full"
    assert "2 jobs queued or scheduled" in refused.json["message"] and int(refused.headers["Retry-After"]) >= 5
    assert submit(client, "four", who=CLIENT_B).status_code == 202  # the cap is per client
    assert submit(client, "one").status_code == 200  # a repeated request still finds its job


def test_a_client_may_carry_its_own_cap(runtime: Runtime) -> None:
    small = ClientConfig(name=CLIENT_A.name, api_key=CLIENT_A.api_key, webhook_secret=CLIENT_A.webhook_secret,
                         max_queued=1)
    client = variant_app(runtime, api_clients=(small, CLIENT_B), rate_limit_pause=0).test_client()
    assert submit(client, "one").status_code == 202
    assert submit(client, "two").json["error"] == "client_queue_full"


def test_max_queue_size_counts_scheduled_jobs(runtime: Runtime) -> None:
    client = variant_app(runtime, max_queue_size=3).test_client()
    for index in range(3):
        assert submit(client, f"later{index}", runAt=later()).status_code == 202
    for answer in (submit(client, "now"), submit(client, "later3", runAt=later())):
        assert answer.status_code == 503 and answer.json["error"] == "queue_full" and answer.headers["Retry-After"]


def test_max_queue_size_counts_scheduled_jobs_while_redis_is_down(runtime: Runtime) -> None:
    broken = Runtime(settings=runtime.settings.with_changes(max_queue_size=2), redis=unreachable_redis(
        runtime.settings), engine=runtime.engine, session_factory=runtime.session_factory)
    client = create_app(runtime=broken).test_client()
    assert submit(client, "queued").status_code == 202  # recorded in SQL, enqueued when Redis is back
    assert submit(client, "later", runAt=later()).status_code == 202
    assert submit(client, "third").status_code == 503


@pytest.mark.sqlite_only  # its subject is the limiter; the quota's SQL runs on both databases in the tests above
def test_burst_of_10000_requests_from_one_client_gets_only_202_or_429(runtime: Runtime) -> None:
    app = variant_app(runtime, rate_limit="600/minute", max_queued_per_client=100, max_queue_size=1000,
                      rate_limit_pause=0)
    client = app.test_client()
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    for index in range(10_000):
        answer = submit(client, f"burst{index}")
        statuses[answer.status_code] += 1
        if answer.status_code == 429:
            errors[answer.json["error"]] += 1
            assert answer.headers["Retry-After"]
    assert set(statuses) == {202, 429}
    assert statuses[202] == 100  # MAX_QUEUED_PER_CLIENT: the rest of the first 600 are client_queue_full
    assert errors == {"client_queue_full": 500, "rate_limited": 9_400}
    assert submit(client, "meanwhile", who=CLIENT_B).status_code == 202


@pytest.fixture
def strict_auth(runtime: Runtime) -> Flask:
    return variant_app(runtime, auth_failure_limit="3/minute", rate_limit_pause=0)


def test_failed_authentications_are_limited_per_source_address(strict_auth: Flask) -> None:
    client = strict_auth.test_client()
    assert client.get("/api/jobs", headers=auth()).status_code == 200  # a known key, cached before the attack
    wrong = {"Authorization": "Bearer not-a-key"}
    assert [client.get("/api/jobs", headers=wrong).status_code for _ in range(3)] == [401] * 3
    blocked = client.get("/api/jobs", headers=wrong)
    assert blocked.status_code == 429 and blocked.json["error"] == "too_many_auth_failures"
    assert int(blocked.headers["Retry-After"]) >= 1
    assert client.get("/api/jobs", headers=auth()).status_code == 200  # the known key still works
    elsewhere = client.get("/api/jobs", headers=wrong, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert elsewhere.status_code == 401  # another address has its own count


def test_failed_authentication_is_logged_without_the_key(strict_auth: Flask, caplog) -> None:  # noqa: ANN001
    caplog.set_level(logging.INFO, logger="api.auth")
    strict_auth.test_client().get("/api/jobs", headers={"X-API-Key": "sk_live_very_secret_guess"})
    lines = [record.getMessage() for record in caplog.records if "event=auth_failed" in record.getMessage()]
    assert len(lines) == 1 and "source=127.0.0.1" in lines[0] and "key_sha256=" in lines[0]
    assert "very_secret" not in caplog.text


def test_limits_fail_open_while_redis_is_down_and_say_so_once(runtime: Runtime, caplog) -> None:  # noqa: ANN001
    broken = Runtime(settings=runtime.settings.with_changes(rate_limit="2/minute", auth_failure_limit="1/minute"),
                     redis=unreachable_redis(runtime.settings), engine=runtime.engine,
                     session_factory=runtime.session_factory)
    client = create_app(runtime=broken).test_client()
    caplog.set_level(logging.INFO)
    statuses = [submit(client, f"down{index}").status_code for index in range(5)]
    assert statuses == [202] * 5  # no 429, and the jobs are in SQL
    assert [client.get("/api/jobs", headers={"X-API-Key": "wrong"}).status_code for _ in range(3)] == [401] * 3
    warnings = [r for r in caplog.records if "event=redis_unavailable" in r.getMessage()]
    assert len(warnings) == 1 and "fail_open=true" in warnings[0].getMessage()
    assert not [r for r in caplog.records if r.name == "flask-limiter"]


def test_every_client_of_the_test_settings_is_limited_separately(runtime: Runtime) -> None:
    rt = variant_runtime(runtime, rate_limit="1/minute", rate_limit_pause=0)
    client = create_app(runtime=rt).test_client()
    assert [client.get("/api/jobs", headers=auth(who)).status_code for who in CLIENTS] == [200] * len(CLIENTS)
    refused = client.get("/api/jobs", headers=auth())
    assert refused.status_code == 429 and all(header in refused.headers for header in RATE_HEADERS)


def test_limits_storage_is_the_services_redis_through_its_own_pool(runtime: Runtime) -> None:
    from api.limits import limiter_storage, storage_uri

    assert storage_uri("unix:///var/run/redis.sock?db=2") == "redis+unix:///var/run/redis.sock?db=2"
    assert storage_uri("rediss://:pw@cache:6380/1") == "rediss://:pw@cache:6380/1"
    assert storage_uri("redis+sentinel://s1:26379,s2:26379/mymaster") == "redis://"
    uri, options = limiter_storage(runtime)
    assert uri.startswith("redis+unix://") and options == {"connection_pool": runtime.redis.connection_pool}


def test_a_batch_counts_against_the_client_cap_whole(runtime: Runtime) -> None:
    client = variant_app(runtime, max_queued_per_client=5, rate_limit_pause=0).test_client()
    batch = "/api/reports/generate-batch"
    items = [sample_request() | {"code": f"b{n}"} for n in range(3)]
    assert client.post(batch, json={"items": items}, headers=auth()).json["accepted"] == 3
    more = [sample_request() | {"code": f"m{n}", "runAt": later()} for n in range(3)]  # scheduled count too
    refused = client.post(batch, json={"items": more}, headers=auth())
    assert refused.status_code == 429 and refused.json["error"] == "client_queue_full"
    assert client.post(batch, json={"items": more[:2]}, headers=auth()).json["accepted"] == 2
    assert submit(client, "single").json["error"] == "client_queue_full"
