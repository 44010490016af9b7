"""Key lifecycle through the CLI, seen by two API apps (two processes' caches) on one Redis and SQL: every change
holds at the next request of each, also while Redis is down (SQL then answers every lookup)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import update

from api import create_app
from jobs.runtime import Runtime
from ops.cli import cli
from store.models import ApiClient, utcnow
from tests.api.openapi_support import variant_app
from tests.conftest import ADMIN, auth, clients_json, unreachable_redis


@pytest.fixture
def env(settings) -> dict[str, str]:  # noqa: ANN001
    """The CLI's environment: the test's DATA_DIR, Redis and configured clients."""
    env = {"DATA_DIR": str(settings.data_dir), "REDIS_URL": settings.redis_url, "API_CLIENTS": clients_json()}
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    return env


def run(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def created_key(env: dict[str, str], name: str) -> str:
    lines = dict(line.split(":", 1) for line in run(env, "create-client", name).splitlines())
    return lines["api key"].strip()


def status(client: FlaskClient, key: str) -> int:
    return client.get("/api/jobs", headers={"X-API-Key": key}).status_code


@pytest.fixture
def processes(runtime: Runtime) -> tuple[FlaskClient, FlaskClient]:
    """Two apps with their own key caches, like two gunicorn workers."""
    return variant_app(runtime).test_client(), variant_app(runtime).test_client()


def test_disable_enable_and_revoke_hold_at_the_next_request_of_every_process(processes, env) -> None:  # noqa: ANN001
    key = created_key(env, "n8n")
    assert [status(p, key) for p in processes] == [200, 200]  # now cached in both
    run(env, "disable-client", "n8n")
    assert [status(p, key) for p in processes] == [401, 401]
    run(env, "enable-client", "n8n")
    assert [status(p, key) for p in processes] == [200, 200]
    run(env, "revoke-client", "n8n", "--yes")
    assert [status(p, key) for p in processes] == [401, 401]
    again = CliRunner().invoke(cli, ["enable-client", "n8n"], env=env)
    assert again.exit_code == 1 and "revoked" in again.output


def test_rotated_key_keeps_working_for_its_grace_period_only(processes, env, runtime: Runtime) -> None:  # noqa: ANN001
    old = created_key(env, "n8n")
    assert [status(p, old) for p in processes] == [200, 200]
    new = run(env, "rotate-key", "n8n", "--grace", "1h").split(":", 1)[1].strip()
    assert new != old and [status(p, new) for p in processes] == [200, 200]
    assert [status(p, old) for p in processes] == [200, 200]  # in its grace period
    with runtime.session() as session:  # the grace period ends
        session.execute(update(ApiClient).values(previous_key_expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    run(env, "set-limits", "n8n", "--rate-limit", "default")  # any change bumps the version
    assert [status(p, old) for p in processes] == [401, 401]
    assert [status(p, new) for p in processes] == [200, 200]


def test_rotated_key_stops_when_its_grace_ends_without_any_other_change(processes, env) -> None:  # noqa: ANN001
    old = created_key(env, "n8n")
    run(env, "rotate-key", "n8n", "--grace", "2s")
    assert [status(p, old) for p in processes] == [200, 200]  # cached until the grace ends, not longer
    time.sleep(2.1)
    assert [status(p, old) for p in processes] == [401, 401]


def test_rotate_key_without_grace_stops_the_old_key_at_once(processes, env) -> None:  # noqa: ANN001
    old = created_key(env, "n8n")
    assert status(processes[0], old) == 200
    run(env, "rotate-key", "n8n", "--grace", "0")
    assert status(processes[0], old) == 401


def test_while_redis_is_down_every_lookup_reads_sql(runtime: Runtime, env) -> None:  # noqa: ANN001
    key = created_key(env, "n8n")
    broken = Runtime(settings=runtime.settings, redis=unreachable_redis(runtime.settings), engine=runtime.engine,
                     session_factory=runtime.session_factory)
    client = create_app(runtime=broken).test_client()
    assert status(client, key) == 200
    run(env, "disable-client", "n8n")  # the CLI reaches Redis; this process does not
    assert status(client, key) == 401


def test_cli_client_changes_are_in_the_audit_trail(client: FlaskClient, env) -> None:  # noqa: ANN001
    created_key(env, "n8n")
    run(env, "disable-client", "n8n")
    run(env, "set-limits", "n8n", "--rate-limit", "100/minute", "--max-queued", "7")
    events = client.get("/api/audit?client=cli", headers=auth(ADMIN)).json["events"]
    assert [e["action"] for e in events] == ["client.set_limits", "client.disable", "client.create"]
    assert {e["detail"]["client"] for e in events} == {"n8n"}
    assert all(e["source"].startswith("cli:") and e["at"].endswith("Z") for e in events)
    assert events[0]["detail"] | {} == {"client": "n8n", "rate_limit": "100/minute", "max_queued": 7}


def test_cli_refuses_to_change_api_clients_clients_and_unknown_ones(runtime: Runtime, env) -> None:  # noqa: ANN001
    configured = CliRunner().invoke(cli, ["disable-client", "acme"], env=env)
    assert configured.exit_code == 1 and "API_CLIENTS" in configured.output
    unknown = CliRunner().invoke(cli, ["rotate-key", "nobody"], env=env)
    assert unknown.exit_code == 1 and "no CLI-created client named 'nobody'" in unknown.output
    unconfirmed = CliRunner().invoke(cli, ["revoke-client", "acme"], env=env)
    assert unconfirmed.exit_code == 1 and "--yes" in unconfirmed.output
    bad = CliRunner().invoke(cli, ["rotate-key", "x", "--grace", "soon"], env=env)
    assert bad.exit_code == 2 and "24h" in bad.output


def test_list_clients_shows_state_limits_and_rotations(runtime: Runtime, env) -> None:  # noqa: ANN001
    created_key(env, "n8n")
    created_key(env, "old")
    run(env, "set-limits", "n8n", "--max-queued", "9")
    run(env, "rotate-webhook-secret", "n8n", "--overlap", "1h")
    run(env, "disable-client", "old")
    listing = run(env, "list-clients")
    n8n = next(line for line in listing.splitlines() if line.startswith("n8n "))
    assert " active " in n8n and " 9 " in n8n and "old secret signs until" in n8n
    assert " disabled " in next(line for line in listing.splitlines() if line.startswith("old "))
