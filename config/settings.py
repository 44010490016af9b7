"""The one typed settings object, built from the environment.

Every key is documented in `.env.example` and the README. `Settings.from_env()` gathers every
missing or malformed variable and raises one `SettingsError` that lists them all.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# APP_ENV profiles: workers, max queue size, job timeout (SPEC.md "Running it").
PROFILES: dict[str, dict[str, int]] = {
    "development": {"workers": 2, "max_queue_size": 100, "job_timeout": 300},
    "staging": {"workers": 3, "max_queue_size": 500, "job_timeout": 300},
    "production": {"workers": 5, "max_queue_size": 1000, "job_timeout": 600},
}


class SettingsError(ValueError):
    """One or more environment variables are missing or malformed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class ClientConfig:
    """An API client: its key, its webhook signing secret and optional static callback header."""

    name: str
    api_key: str
    webhook_secret: str
    callback_auth_header: tuple[str, str] | None = None
    admin: bool = False

    def __repr__(self) -> str:  # never print secrets
        return f"ClientConfig(name={self.name!r}, admin={self.admin})"


@dataclass(frozen=True)
class Settings:
    """All configuration of the service. Build with `Settings.from_env(os.environ)`."""

    app_env: str = "development"
    port: int = 8000
    host: str = "127.0.0.1"
    api_processes: int = 2
    embedded_redis_port: int = 0
    data_dir: Path = Path("./var")
    redis_url: str | None = field(default=None, repr=False)
    database_url: str | None = field(default=None, repr=False)
    mongo_uri: str | None = field(default=None, repr=False)
    api_clients: tuple[ClientConfig, ...] = field(default=(), repr=False)
    callback_allowed_hosts: tuple[str, ...] = ()
    workers: int = 2
    webhook_workers: int = 1
    webhook_concurrency: int = 8
    max_queue_size: int = 100
    job_timeout: int = 300
    sync_timeout: int = 60
    cleanup_completed_after: int = 3600
    pdf_retention_days: int = 30
    job_retry_delays: tuple[int, ...] = (60, 120, 240)
    webhook_retry_delays: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000)
    webhook_timeout: float = 15.0
    max_body_bytes: int = 1024 * 1024
    public_base_url: str | None = None
    dashboard_username: str = "admin"
    dashboard_password: str | None = field(default=None, repr=False)
    log_level: str = "INFO"
    redis_socket_timeout: float = 0.5
    reconcile_interval: int = 15
    stale_job_grace: int = 30
    scheduler_interval: float = 1.0
    alert_queue_length: int = 100
    alert_failure_rate: float = 0.05
    alert_avg_processing_seconds: float = 300.0
    job_watch_interval: float = 0.5
    events_max_seconds: int = 3600
    storage_backend: str = "local"
    templates_dir: Path | None = None
    google_drive_credentials_file: Path | None = None
    google_drive_folder_id: str | None = None
    google_drive_share_with: str | None = None
    google_drive_share_anyone: bool = False
    google_drive_api_endpoint: str | None = None
    mongo_database: str = "workflow"
    mongo_collection: str = "psikotes_v2"
    mongo_code_field: str = "code"
    mongo_product_field: str = "product_id"
    mongo_data_field: str | None = None
    loopback_only: bool = False
    host_name: str = field(default_factory=socket.gethostname)
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_download: str = "stream"
    s3_presign_seconds: int = 300

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default `os.environ`), reporting every problem at once."""
        env = os.environ if environ is None else environ
        reader = _EnvReader(env)
        app_env = reader.get("APP_ENV", str, "development")
        if app_env not in PROFILES:
            reader.problems.append(f"APP_ENV must be one of {', '.join(PROFILES)}, got {app_env!r}")
            app_env = "development"
        profile = PROFILES[app_env]
        settings = cls(
            app_env=app_env,
            port=reader.get("PORT", _port, 8000),
            host=reader.get("HOST", str, "127.0.0.1"),
            api_processes=reader.get("API_PROCESSES", _positive_int, 2),
            embedded_redis_port=reader.get("EMBEDDED_REDIS_PORT", _port_or_zero, 0),
            data_dir=reader.get("DATA_DIR", Path, Path("./var")),
            redis_url=reader.get("REDIS_URL", _url("redis://", "rediss://", "unix://"), None),
            database_url=reader.get("DATABASE_URL", str, None),
            mongo_uri=reader.get("MONGO_URI", _url("mongodb://", "mongodb+srv://"), None),
            api_clients=reader.get("API_CLIENTS", parse_clients, ()),
            callback_allowed_hosts=reader.get("CALLBACK_ALLOWED_HOSTS", _comma_list, ()),
            workers=reader.get("WORKERS", _positive_int, profile["workers"]),
            webhook_workers=reader.get("WEBHOOK_WORKERS", _positive_int, 1),
            webhook_concurrency=reader.get("WEBHOOK_CONCURRENCY", _positive_int, 8),
            max_queue_size=reader.get("MAX_QUEUE_SIZE", _positive_int, profile["max_queue_size"]),
            job_timeout=reader.get("JOB_TIMEOUT", _positive_int, profile["job_timeout"]),
            sync_timeout=reader.get("SYNC_TIMEOUT", _positive_int, 60),
            cleanup_completed_after=reader.get("CLEANUP_COMPLETED_AFTER", _positive_int, 3600),
            pdf_retention_days=reader.get("PDF_RETENTION_DAYS", _positive_int, 30),
            job_retry_delays=reader.get("JOB_RETRY_DELAYS", _delays, (60, 120, 240)),
            webhook_retry_delays=reader.get(
                "WEBHOOK_RETRY_DELAYS", _delays, (5, 300, 1800, 7200, 18000, 36000)
            ),
            webhook_timeout=reader.get("WEBHOOK_TIMEOUT", _positive_float, 15.0),
            max_body_bytes=reader.get("MAX_BODY_BYTES", _positive_int, 1024 * 1024),
            public_base_url=reader.get("PUBLIC_BASE_URL", _url("http://", "https://"), None),
            dashboard_username=reader.get("RQ_DASHBOARD_USERNAME", str, "admin"),
            dashboard_password=reader.get("RQ_DASHBOARD_PASSWORD", str, None),
            log_level=reader.get("LOG_LEVEL", _log_level, "INFO"),
            redis_socket_timeout=reader.get("REDIS_SOCKET_TIMEOUT", _positive_float, 0.5),
            reconcile_interval=reader.get("RECONCILE_INTERVAL", _positive_int, 15),
            stale_job_grace=reader.get("STALE_JOB_GRACE", _positive_int, 30),
            scheduler_interval=reader.get("SCHEDULER_INTERVAL", _positive_float, 1.0),
            alert_queue_length=reader.get("ALERT_QUEUE_LENGTH", _positive_int, 100),
            alert_failure_rate=reader.get("ALERT_FAILURE_RATE", _fraction, 0.05),
            alert_avg_processing_seconds=reader.get("ALERT_AVG_PROCESSING_SECONDS", _positive_float, 300.0),
            job_watch_interval=reader.get("JOB_WATCH_INTERVAL", _positive_float, 0.5),
            events_max_seconds=reader.get("EVENTS_MAX_SECONDS", _positive_int, 3600),
            storage_backend=reader.get("STORAGE_BACKEND", _choice("local", "gdrive", "s3"), "local"),
            templates_dir=reader.get("TEMPLATES_DIR", Path, None),
            google_drive_credentials_file=reader.get("GOOGLE_DRIVE_CREDENTIALS_FILE", Path, None),
            google_drive_folder_id=reader.get("GOOGLE_DRIVE_FOLDER_ID", str, None),
            google_drive_share_with=reader.get("GOOGLE_DRIVE_SHARE_WITH", str, None),
            google_drive_share_anyone=reader.get("GOOGLE_DRIVE_SHARE_ANYONE", _bool, False),
            google_drive_api_endpoint=reader.get("GOOGLE_DRIVE_API_ENDPOINT", _url("http://", "https://"), None),
            mongo_database=reader.get("MONGO_DATABASE", str, "workflow"),
            mongo_collection=reader.get("MONGO_COLLECTION", str, "psikotes_v2"),
            mongo_code_field=reader.get("MONGO_CODE_FIELD", str, "code"),
            mongo_product_field=reader.get("MONGO_PRODUCT_FIELD", str, "product_id"),
            mongo_data_field=reader.get("MONGO_DATA_FIELD", str, None),
            loopback_only=reader.get("LOOPBACK_ONLY", _bool, False),
            host_name=reader.get("HOST_NAME", _host_name, socket.gethostname()),
            s3_bucket=reader.get("S3_BUCKET", str, None),
            s3_prefix=reader.get("S3_PREFIX", _key_prefix, ""),
            s3_endpoint_url=reader.get("S3_ENDPOINT_URL", _url("http://", "https://"), None),
            s3_region=reader.get("S3_REGION", str, None),
            s3_download=reader.get("S3_DOWNLOAD", _choice("stream", "redirect"), "stream"),
            s3_presign_seconds=reader.get("S3_PRESIGN_SECONDS", _presign_seconds, 300),
        )
        if settings.storage_backend == "gdrive" and settings.google_drive_credentials_file is None:
            reader.problems.append("STORAGE_BACKEND=gdrive needs GOOGLE_DRIVE_CREDENTIALS_FILE")
        if settings.storage_backend == "s3" and not settings.s3_bucket:
            reader.problems.append("STORAGE_BACKEND=s3 needs S3_BUCKET")
        if reader.problems:
            raise SettingsError(reader.problems)
        return settings

    def with_changes(self, **changes: Any) -> Settings:
        """Return a copy with some fields replaced (tests and tools build variants this way)."""
        return replace(self, **changes)

    @property
    def sqlalchemy_url(self) -> str:
        """The SQL database URL: DATABASE_URL, or SQLite in DATA_DIR."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'pdfjobs.sqlite3').resolve()}"

    @property
    def pdf_dir(self) -> Path:
        """Where the local storage backend keeps PDFs."""
        return self.data_dir / "pdfs"

    @property
    def embedded_redis_dir(self) -> Path:
        """Where the embedded Redis keeps its AOF, dump and socket."""
        return self.data_dir / "redis"

    @property
    def log_dir(self) -> Path:
        """Where supervisord and its programs write their logs."""
        return self.data_dir / "logs"


class _EnvReader:
    """Reads variables, converting each and collecting problems instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[str] = []

    def get(self, name: str, convert: Callable[[str], T], default: T) -> T:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return convert(raw.strip())
        except (ValueError, TypeError) as exc:
            self.problems.append(f"{name} {exc}")
            return default


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return number


def _port(value: str) -> int:
    number = _positive_int(value)
    if number > 65535:
        raise ValueError(f"must be a port number 1-65535, got {value!r}")
    return number


def _port_or_zero(value: str) -> int:
    return 0 if value == "0" else _port(value)


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if number <= 0:
        raise ValueError(f"must be a positive number, got {value!r}")
    return number


def _fraction(value: str) -> float:
    number = _positive_float(value)
    if number > 1:
        raise ValueError(f"must be a fraction between 0 and 1 (0.05 = 5 %), got {value!r}")
    return number


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def _host_name(value: str) -> str:
    if len(value) > 255 or not value.isprintable():
        raise ValueError(f"must be a printable name of at most 255 characters, got {value!r}")
    return value


# S3 key prefix: parts of letters, digits, '.', '-', '_' joined by '/', each starting with a letter or digit.
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}(/[A-Za-z0-9][A-Za-z0-9._-]{0,199}){0,7}")


def _key_prefix(value: str) -> str:
    prefix = value.strip("/")
    if prefix and not _PREFIX.fullmatch(prefix):
        raise ValueError(
            "must be up to 8 '/'-separated parts of letters, digits, '.', '-', '_', each starting with a "
            f"letter or digit (for example pdf-jobs/prod), got {value!r}"
        )
    return prefix


def _presign_seconds(value: str) -> int:
    number = _positive_int(value)
    if number > 604800:  # SigV4 presigned URLs live at most 7 days
        raise ValueError(f"must be 1-604800 seconds (7 days, the longest a presigned URL can live), got {value!r}")
    return number


def _comma_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _delays(value: str) -> tuple[int, ...]:
    items = _comma_list(value)
    if not items or not all(item.isdigit() for item in items):
        raise ValueError(f"must be a comma list of whole seconds such as 60,120,240, got {value!r}")
    return tuple(int(item) for item in items)


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {value!r}")
    return level


def _choice(*allowed: str) -> Callable[[str], str]:
    def convert(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {value!r}")
        return value

    return convert


def _url(*schemes: str) -> Callable[[str], str]:
    def convert(value: str) -> str:
        if not value.startswith(schemes):
            raise ValueError(f"must start with {' or '.join(schemes)}, got a value that does not")
        return value

    return convert


def parse_clients(value: str) -> tuple[ClientConfig, ...]:
    """Parse API_CLIENTS: a JSON list of {name, api_key, webhook_secret, callback_auth_header?, admin?}."""
    try:
        items = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"must be a JSON list of client objects ({exc.msg} at character {exc.pos})") from None
    if not isinstance(items, list):
        raise ValueError("must be a JSON list of client objects")
    clients = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"item {index} must be an object")
        missing = [key for key in ("name", "api_key", "webhook_secret") if not item.get(key)]
        if missing:
            raise ValueError(f"item {index} is missing {', '.join(missing)}")
        header = item.get("callback_auth_header")
        if header is not None:
            if not isinstance(header, dict) or not header.get("name") or not header.get("value"):
                raise ValueError(f"item {index}: callback_auth_header must be {{\"name\": ..., \"value\": ...}}")
            header = (str(header["name"]), str(header["value"]))
        clients.append(
            ClientConfig(
                name=str(item["name"]),
                api_key=str(item["api_key"]),
                webhook_secret=str(item["webhook_secret"]),
                callback_auth_header=header,
                admin=bool(item.get("admin", False)),
            )
        )
    return tuple(clients)
