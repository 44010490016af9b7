"""`python -m ops.cli`: clients, requeue of failed jobs, stats."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from ops.cli import cli
from tests.conftest import PROJECT_DIR, auth, break_job_data, clients_json, run_jobs, sample_request


@pytest.fixture
def env(settings) -> dict[str, str]:
    """The CLI's environment: the test's DATA_DIR, Redis and configured clients."""
    env = {"DATA_DIR": str(settings.data_dir), "REDIS_URL": settings.redis_url, "API_CLIENTS": clients_json()}
    if settings.database_url:  # a PostgreSQL run (TEST_DATABASE_URL): the CLI must use the same database
        env["DATABASE_URL"] = settings.database_url
    return env


def run(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_cli_create_client_prints_key_once_and_the_key_works(client, env) -> None:
    result = run(env, "create-client", "n8n-prod", "--callback-header", "X-Token:abc")
    assert result.exit_code == 0, result.output
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    key, secret = lines["api key"].strip(), lines["webhook secret"].strip()
    assert key.startswith("pk_") and secret.startswith("whsec_")
    response = client.post("/api/reports/generate-async", json=sample_request(), headers={"X-API-Key": key})
    assert response.status_code == 202
    listing = run(env, "list-clients").stdout
    assert "n8n-prod" in listing and "X-Token" in listing and "acme" in listing
    assert key not in listing and secret not in listing and "abc" not in listing


def test_cli_create_client_refuses_duplicates_and_bad_header(runtime, env) -> None:
    assert run(env, "create-client", "dup", "--admin").exit_code == 0
    again = run(env, "create-client", "dup")
    assert again.exit_code == 1 and "exists already" in again.output
    assert run(env, "create-client", "acme").exit_code == 1  # configured in API_CLIENTS
    bad = run(env, "create-client", "x", "--callback-header", "no-colon")
    assert bad.exit_code == 2 and "NAME:VALUE" in bad.output


def test_cli_requeue_failed_retries_dead_letters(client, runtime, env) -> None:
    failed = client.post("/api/reports/generate-async", json=sample_request() | {"code": "x"},
                         headers=auth()).json["job_id"]
    break_job_data(runtime.session, failed)
    run_jobs(runtime)
    assert client.get(f"/api/jobs/{failed}", headers=auth()).json["status"] == "failed"
    result = run(env, "requeue-failed")
    assert result.exit_code == 0 and "requeued 1 job(s)" in result.output and failed in result.output
    assert client.get(f"/api/jobs/{failed}", headers=auth()).json["status"] == "queued"
    assert runtime.redis.lrange("rq:queue:normal", 0, -1) == [failed.encode()]


def test_cli_stats_prints_json(runtime, env) -> None:
    result = run(env, "stats")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["queues"] == {"high": 0, "normal": 0, "low": 0}
    assert [alert["name"] for alert in stats["alerts"]] == ["no_workers"]


def test_cli_runs_as_a_module(env) -> None:
    result = subprocess.run([sys.executable, "-m", "ops.cli", "--help"], cwd=PROJECT_DIR,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("create-client", "list-clients", "requeue-failed", "stats"):
        assert command in result.stdout
