"""The loud PUBLIC_BASE_URL warning: only when other hosts can reach the deployment and links would say 127.0.0.1."""

from __future__ import annotations

import pytest

from config import Settings
from config.deployment import public_base_url_problem


@pytest.mark.parametrize("env", [
    {},
    {"REDIS_URL": "redis://127.0.0.1:6379/0", "DATABASE_URL": "postgresql+psycopg://u:p@localhost/db"},
    {"REDIS_URL": "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster"},
    {"HOST": "0.0.0.0", "PUBLIC_BASE_URL": "https://pdf.example.com"},
    {"DATABASE_URL": "sqlite:////var/lib/pdf/jobs.sqlite3"},
])
def test_no_warning_on_one_host_or_with_a_public_base_url(env: dict[str, str]) -> None:
    assert public_base_url_problem(Settings.from_env(env)) is None


@pytest.mark.parametrize(("env", "reason"), [
    ({"HOST": "0.0.0.0"}, "HOST=0.0.0.0"),
    ({"REDIS_URL": "rediss://:pw@redis.internal:6380/0"}, "REDIS_URL"),
    ({"REDIS_URL": "redis+sentinel://10.0.0.5:26379,127.0.0.1:26380/mymaster"}, "REDIS_URL"),
    ({"DATABASE_URL": "postgresql+psycopg://u:secret@db.internal/pdf", "PUBLIC_BASE_URL": "http://127.0.0.1:8000"},
     "DATABASE_URL"),
])
def test_warning_names_what_makes_the_deployment_multi_host_and_the_fix(env: dict[str, str], reason: str) -> None:
    problem = public_base_url_problem(Settings.from_env(env))

    assert problem is not None and reason in problem and "Set PUBLIC_BASE_URL" in problem
    assert "secret" not in problem and "pw@" not in problem


def test_make_run_prints_the_warning_loudly_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    from ops.run import warn_public_base_url

    warn_public_base_url(Settings.from_env({"HOST": "0.0.0.0"}))
    warn_public_base_url(Settings.from_env({}))

    captured = capsys.readouterr()
    assert captured.err.count("WARNING: PUBLIC_BASE_URL is unset (http://127.0.0.1:8000)") == 1
    assert captured.out == ""
