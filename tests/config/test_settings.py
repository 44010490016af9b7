"""Settings: defaults, profiles, parsing and one error listing every problem."""

from __future__ import annotations

import pytest

from config import Settings, SettingsError


def test_settings_defaults_follow_development_profile() -> None:
    settings = Settings.from_env({})
    assert (settings.workers, settings.max_queue_size, settings.job_timeout) == (2, 100, 300)
    assert settings.port == 8000
    assert settings.sync_timeout == 60
    assert settings.cleanup_completed_after == 3600
    assert settings.pdf_retention_days == 30
    assert settings.job_retry_delays == (60, 120, 240)
    assert settings.webhook_retry_delays == (5, 300, 1800, 7200, 18000, 36000)
    assert settings.redis_url is None and settings.database_url is None


@pytest.mark.parametrize(
    ("app_env", "expected"),
    [("development", (2, 100, 300)), ("staging", (3, 500, 300)), ("production", (5, 1000, 600))],
)
def test_settings_profiles_set_workers_queue_size_and_timeout(app_env: str, expected: tuple[int, int, int]) -> None:
    settings = Settings.from_env({"APP_ENV": app_env})
    assert (settings.workers, settings.max_queue_size, settings.job_timeout) == expected


def test_settings_explicit_values_override_profile() -> None:
    settings = Settings.from_env({"APP_ENV": "production", "WORKERS": "7", "JOB_TIMEOUT": "42"})
    assert settings.workers == 7 and settings.job_timeout == 42 and settings.max_queue_size == 1000


def test_settings_reports_every_problem_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(
            {"WORKERS": "zero", "APP_ENV": "prod", "JOB_RETRY_DELAYS": "1,x", "PORT": "70000", "API_CLIENTS": "{"}
        )
    text = str(info.value)
    assert "WORKERS must be a positive integer, got 'zero'" in text
    assert "APP_ENV must be one of development, staging, production, got 'prod'" in text
    assert "JOB_RETRY_DELAYS" in text and "PORT" in text and "API_CLIENTS" in text
    assert len(info.value.problems) == 5


def test_settings_parse_api_clients_with_auth_header() -> None:
    raw = (
        '[{"name": "n8n", "api_key": "k1", "webhook_secret": "whsec_abc",'
        ' "callback_auth_header": {"name": "X-Token", "value": "t"}, "admin": true}]'
    )
    (client,) = Settings.from_env({"API_CLIENTS": raw}).api_clients
    assert client.name == "n8n" and client.callback_auth_header == ("X-Token", "t") and client.admin


def test_settings_api_clients_missing_fields_are_named() -> None:
    with pytest.raises(SettingsError, match="item 0 is missing api_key, webhook_secret"):
        Settings.from_env({"API_CLIENTS": '[{"name": "x"}]'})


def test_settings_repr_hides_secrets() -> None:
    settings = Settings.from_env(
        {
            "API_CLIENTS": '[{"name": "n", "api_key": "SECRETKEY", "webhook_secret": "whsec_SECRET"}]',
            "REDIS_URL": "redis://:hunter2@localhost:6379/0",
            "RQ_DASHBOARD_PASSWORD": "pw-hunter3",
        }
    )
    text = repr(settings)
    assert "SECRETKEY" not in text and "hunter2" not in text and "hunter3" not in text


def test_settings_sqlite_default_lives_in_data_dir(tmp_path) -> None:
    settings = Settings.from_env({"DATA_DIR": str(tmp_path)})
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path.resolve()}/pdfjobs.sqlite3"


def test_settings_report_and_template_settings(tmp_path) -> None:
    logo = tmp_path / "logo.svg"
    logo.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    settings = Settings.from_env({"TEMPLATES_DIR": str(tmp_path), "TEMPLATES_RELOAD_INTERVAL": "0",
                                  "REPORT_LOGO_FILE": str(logo), "REPORT_TIMEZONE": "Asia/Jakarta",
                                  "REPORT_ORG_NAME": "Biro Cahaya", "PREVIEW_TIMEOUT": "3"})
    assert settings.templates_dir == tmp_path and settings.templates_reload_interval == 0
    assert settings.report_logo_file == logo and settings.report_timezone == "Asia/Jakarta"
    assert settings.report_org_name == "Biro Cahaya" and settings.preview_timeout == 3.0


def test_settings_report_and_template_problems_are_named(tmp_path) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"TEMPLATES_DIR": str(tmp_path / "nope"), "REPORT_LOGO_FILE": str(tmp_path / "logo.bmp"),
                           "REPORT_TIMEZONE": "Mars/Olympus", "TEMPLATES_RELOAD_INTERVAL": "-1"})
    text = str(info.value)
    assert "TEMPLATES_DIR must be an existing directory" in text and "REPORT_LOGO_FILE must be a" in text
    assert "REPORT_TIMEZONE must be an IANA time zone" in text and "TEMPLATES_RELOAD_INTERVAL" in text
