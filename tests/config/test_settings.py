"""Settings: defaults, profiles, parsing and one error listing every problem."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config import PROFILES, ClientConfig, Settings, SettingsError


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


def test_settings_list_every_bad_variable_in_one_error() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(
            {
                "PORT": "0",
                "EMBEDDED_REDIS_PORT": "-1",
                "JOB_TIMEOUT": "abc",
                "WEBHOOK_TIMEOUT": "soon",
                "ALERT_FAILURE_RATE": "5",
                "WEBHOOK_RETRY_DELAYS": "5,-1",
                "LOG_LEVEL": "loud",
                "STORAGE_BACKEND": "ftp",
                "LOOPBACK_ONLY": "maybe",
                "PUBLIC_BASE_URL": "ftp://example.com",
            }
        )
    assert info.value.problems == [
        "PORT must be a port number 1-65535, got '0'",
        "EMBEDDED_REDIS_PORT must be 0 or a port number 1-65535, got '-1'",
        "JOB_TIMEOUT must be a positive integer, got 'abc'",
        "WEBHOOK_RETRY_DELAYS must be a comma list of whole seconds such as 60,120,240, got '5,-1'",
        "WEBHOOK_TIMEOUT must be a positive number, got 'soon'",
        "PUBLIC_BASE_URL must start with http:// or https://, got 'ftp://example.com'",
        "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got 'loud'",
        "ALERT_FAILURE_RATE must be a fraction between 0 and 1 (0.05 = 5 %), got '5'",
        "STORAGE_BACKEND must be one of local, gdrive, s3, dropbox, got 'ftp'",
        "LOOPBACK_ONLY must be true or false, got 'maybe'",
    ]


def test_settings_gdrive_needs_credentials_file_listed_with_the_others() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"STORAGE_BACKEND": "gdrive", "WORKERS": "0"})
    assert info.value.problems == [
        "WORKERS must be a positive integer, got '0'",
        "STORAGE_BACKEND=gdrive needs GOOGLE_DRIVE_CREDENTIALS_FILE",
    ]
    settings = Settings.from_env({"STORAGE_BACKEND": "gdrive", "GOOGLE_DRIVE_CREDENTIALS_FILE": "/etc/sa.json"})
    assert str(settings.google_drive_credentials_file) == "/etc/sa.json"


def test_settings_dropbox_needs_app_key_and_refresh_token_and_hides_them() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"STORAGE_BACKEND": "dropbox", "DROPBOX_APP_SECRET": "app-secret-1"})
    assert info.value.problems == ["STORAGE_BACKEND=dropbox needs DROPBOX_APP_KEY and DROPBOX_REFRESH_TOKEN"]
    settings = Settings.from_env({"STORAGE_BACKEND": "dropbox", "DROPBOX_APP_KEY": "key-1",
                                  "DROPBOX_REFRESH_TOKEN": "refresh-1", "DROPBOX_APP_SECRET": "app-secret-1",
                                  "DROPBOX_FOLDER": "Reports/2026/"})
    assert (settings.dropbox_app_key, settings.dropbox_folder) == ("key-1", "/Reports/2026")
    assert "refresh-1" not in repr(settings) and "app-secret-1" not in repr(settings)


@pytest.mark.parametrize(("value", "expected"),
                         [("/", ""), ("pdf-jobs/", "/pdf-jobs"), ("/PDF Reports", "/PDF Reports")])
def test_settings_dropbox_folder_is_tidied(value: str, expected: str) -> None:
    assert Settings.from_env({"DROPBOX_FOLDER": value}).dropbox_folder == expected


@pytest.mark.parametrize("value", ["/a/../b", "/a/.", "a\\b"])
def test_settings_dropbox_folder_refuses_dot_parts_and_backslashes(value: str) -> None:
    with pytest.raises(SettingsError, match="DROPBOX_FOLDER must be a Dropbox folder path"):
        Settings.from_env({"DROPBOX_FOLDER": value})


def test_settings_explicit_values_override_every_profile_value() -> None:
    settings = Settings.from_env({"APP_ENV": "staging", "MAX_QUEUE_SIZE": "7"})
    assert (settings.workers, settings.max_queue_size, settings.job_timeout) == (3, 7, 300)


def test_settings_built_in_code_hold_the_development_profile_and_ignore_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORKERS", "9")
    monkeypatch.setenv("APP_ENV", "production")
    settings = Settings()
    assert {name: getattr(settings, name) for name in PROFILES["development"]} == PROFILES["development"]
    assert Settings(app_env="production").workers == 2  # profiles apply to the environment only
    assert Settings.from_env().workers == 9  # os.environ by default
    assert Settings.from_env().max_queue_size == 1000


@pytest.mark.parametrize(
    ("raw", "hosts"),
    [("n8n.internal:5678", ("n8n.internal:5678",)), (" a:1, 10.0.0.0/8 ,,", ("a:1", "10.0.0.0/8")), (",", ())],
)
def test_settings_callback_allowed_hosts_is_a_comma_list(raw: str, hosts: tuple[str, ...]) -> None:
    assert Settings.from_env({"CALLBACK_ALLOWED_HOSTS": raw}).callback_allowed_hosts == hosts


@pytest.mark.parametrize(("raw", "delays"), [("0", (0,)), (" 5, 60 ,", (5, 60)), ("1,2,3,4", (1, 2, 3, 4))])
def test_settings_retry_delays_are_comma_lists_of_seconds(raw: str, delays: tuple[int, ...]) -> None:
    settings = Settings.from_env({"JOB_RETRY_DELAYS": raw, "WEBHOOK_RETRY_DELAYS": raw})
    assert settings.job_retry_delays == delays and settings.webhook_retry_delays == delays


@pytest.mark.parametrize("raw", ["[60, 120]", "60;120", ",", "1.5", "-1"])
def test_settings_retry_delays_reject_anything_but_comma_separated_seconds(raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"JOB_RETRY_DELAYS": raw})
    assert info.value.problems == [
        f"JOB_RETRY_DELAYS must be a comma list of whole seconds such as 60,120,240, got {raw!r}"
    ]


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("Yes", True), ("1", True), ("on", True),
                                            ("false", False), ("NO", False), ("0", False), ("off", False)])
def test_settings_bools(raw: str, value: bool) -> None:
    settings = Settings.from_env({"LOOPBACK_ONLY": raw, "GOOGLE_DRIVE_SHARE_ANYONE": raw})
    assert settings.loopback_only is value and settings.google_drive_share_anyone is value


def test_settings_empty_or_blank_variable_counts_as_unset() -> None:
    blank = {"APP_ENV": "", "WORKERS": "  ", "PORT": "", "JOB_RETRY_DELAYS": " ", "API_CLIENTS": "",
             "REDIS_URL": "", "LOOPBACK_ONLY": "", "LOG_LEVEL": "\t", "RQ_DASHBOARD_USERNAME": ""}
    assert Settings.from_env(blank) == Settings()


def test_settings_values_are_stripped_and_log_level_upper_cased() -> None:
    settings = Settings.from_env({"WORKERS": " 4 ", "LOG_LEVEL": "debug", "RQ_DASHBOARD_USERNAME": " ops "})
    assert (settings.workers, settings.log_level, settings.dashboard_username) == (4, "DEBUG", "ops")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("{", "API_CLIENTS must be a JSON list of client objects (Expecting property name enclosed in double quotes"),
        ('{"name": "n"}', "API_CLIENTS must be a JSON list of client objects"),
        ("[1]", "API_CLIENTS item 0 must be an object"),
        ('[{"name": "n", "api_key": "k", "webhook_secret": "SECRETws", "callback_auth_header": "x"}]',
         'API_CLIENTS item 0: callback_auth_header must be {"name": ..., "value": ...}'),
    ],
)
def test_settings_api_clients_errors_say_what_is_wrong_without_the_secrets(raw: str, problem: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"API_CLIENTS": raw})
    (line,) = info.value.problems
    assert line.startswith(problem) and "SECRET" not in line and "got" not in line


def test_settings_errors_never_echo_secret_values() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"REDIS_URL": "http://:hunter2@cache", "MONGO_URI": "http://:hunter3@db"})
    assert info.value.problems == [
        "REDIS_URL must start with redis:// or rediss:// or unix:// or redis+sentinel:// or rediss+sentinel://",
        "MONGO_URI must start with mongodb:// or mongodb+srv://",
    ]


def test_settings_repr_hides_every_secret() -> None:
    settings = Settings(
        redis_url="redis://:hunter1@localhost/0",
        database_url="postgresql+psycopg://u:hunter2@db/jobs",
        mongo_uri="mongodb://u:hunter3@mongo",
        api_clients=(ClientConfig(name="n", api_key="hunter4", webhook_secret="whsec_hunter5"),),
        dashboard_password="hunter6",
    )
    assert "hunter" not in repr(settings) and "hunter" not in str(settings)
    assert "port=8000" in repr(settings)


def test_settings_are_frozen_and_with_changes_validates() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.workers = 3  # type: ignore[misc]
    changed = settings.with_changes(workers=3, job_retry_delays=())
    assert (changed.workers, changed.job_retry_delays, settings.workers) == (3, (), 2)
    with pytest.raises(ValidationError):
        settings.with_changes(workers=0)
    with pytest.raises(ValidationError):
        settings.with_changes(worker=3)  # a misspelt field is refused, not added
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
