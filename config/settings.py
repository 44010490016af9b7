"""The one typed settings object, a pydantic-settings model read from the environment.

Each field carries its environment variable (the field name upper-cased, or its alias) and its
description; `python -m config.docs` prints `.env.example` and the README's rows from them.
`Settings.from_env()` gathers every malformed variable and raises one `SettingsError` listing them all.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.fernet import Fernet
from limits import parse_many
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from config.redis_urls import check_redis_url

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
    """An API client: its key, its webhook signing secret(s), optional static callback header and limits.

    `previous_webhook_secret` is set while a rotated-out secret still signs beside the new one;
    `rate_limit` and `max_queued` are None where the client uses RATE_LIMIT and MAX_QUEUED_PER_CLIENT.
    """

    name: str
    api_key: str
    webhook_secret: str
    callback_auth_header: tuple[str, str] | None = None
    admin: bool = False
    rate_limit: str | None = None
    max_queued: int | None = None
    previous_webhook_secret: str | None = None

    def __repr__(self) -> str:  # never print secrets
        return f"ClientConfig(name={self.name!r}, admin={self.admin})"

    @property
    def signing_secrets(self) -> tuple[str, ...]:
        """The secrets that sign its webhooks: the current one, then the previous one during an overlap."""
        return (self.webhook_secret, *((self.previous_webhook_secret,) if self.previous_webhook_secret else ()))


@dataclass(frozen=True)
class Expect:
    """What a value must be, as error messages say it: `JOB_TIMEOUT must be <text>, got 'abc'`."""

    text: str


def _comma_list(value: Any) -> Any:
    """Split an environment string on commas; tuples built in code pass through."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _seconds_list(value: Any) -> Any:
    """A comma list that the environment may not leave empty (in code, () means no retries)."""
    if isinstance(value, str) and not _comma_list(value):
        raise ValueError("empty list")
    return _comma_list(value)


def _starts_with(*schemes: str) -> AfterValidator:
    def check(value: str) -> str:
        if not value.startswith(schemes):
            raise ValueError(f"must start with {' or '.join(schemes)}")
        return value

    return AfterValidator(check)


def _dropbox_folder(value: Any) -> Any:
    """A Dropbox folder as the API takes it: "/a/b" ("pdf-jobs/" is "/pdf-jobs"), "" for the root."""
    if not isinstance(value, str):
        return value
    parts = [part for part in value.strip().split("/") if part]
    if any(part in (".", "..") or "\\" in part or not part.isprintable() or len(part) > 255 for part in parts):
        raise ValueError("not a Dropbox folder path")
    return "".join(f"/{part}" for part in parts)


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _fernet_key(key: str) -> str:
    Fernet(key.encode())  # raises ValueError on anything but 32 url-safe base64 bytes
    return key


def check_rate(value: str) -> str:
    """A rate in the `limits` notation (`600/minute`, `10/second;1000/hour`); ValueError otherwise."""
    try:
        items = parse_many(value)
    except (ValueError, TypeError):
        items = []
    if not items:
        raise ValueError(f"must be a rate such as 600/minute or 10/second;1000/hour, got {value!r}")
    return value


PositiveInt = Annotated[int, Field(gt=0), Expect("a positive integer")]
Niceness = Annotated[int, Field(ge=0, le=19), Expect("a niceness 0-19 (0 = same CPU priority as the API)")]
PositiveFloat = Annotated[float, Field(gt=0), Expect("a positive number")]
Port = Annotated[int, Field(gt=0, le=65535), Expect("a port number 1-65535")]
NonNegativeInt = Annotated[int, Field(ge=0), Expect("0 or a positive integer")]
PortOrZero = Annotated[int, Field(ge=0, le=65535), Expect("0 or a port number 1-65535")]
Fraction = Annotated[float, Field(gt=0, le=1), Expect("a fraction between 0 and 1 (0.05 = 5 %)")]
Flag = Annotated[bool, Expect("true or false")]
Hosts = Annotated[tuple[str, ...], BeforeValidator(_comma_list)]
Delays = Annotated[
    tuple[Annotated[int, Field(ge=0)], ...],
    BeforeValidator(_seconds_list),
    Expect("a comma list of whole seconds such as 60,120,240"),
]
AppEnv = Annotated[Literal["development", "staging", "production"], Expect("one of development, staging, production")]
LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    BeforeValidator(_upper),
    Expect("DEBUG, INFO, WARNING, ERROR or CRITICAL"),
]
ROLES = ("api", "worker", "webhook", "scheduler")
Roles = Annotated[
    tuple[Literal["api", "worker", "webhook", "scheduler"], ...],
    BeforeValidator(_comma_list),
    Field(min_length=1),
    Expect("a comma list of api, worker, webhook, scheduler"),
]
StorageBackend = Annotated[Literal["local", "gdrive", "s3", "dropbox"], Expect("one of local, gdrive, s3, dropbox")]
# S3 key prefix: up to 8 parts of letters, digits, '.', '-', '_' joined by '/', each starting with a letter or digit.
KeyPrefix = Annotated[
    str,
    BeforeValidator(lambda value: value.strip("/") if isinstance(value, str) else value),
    Field(pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]{0,199}(/[A-Za-z0-9][A-Za-z0-9._-]{0,199}){0,7})?$"),
    Expect("up to 8 '/'-separated parts of letters, digits, '.', '-', '_', each starting with a letter or digit "
           "(for example pdf-jobs/prod)"),
]
HostName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
                     Expect("a printable name of at most 255 characters without spaces")]
PresignSeconds = Annotated[int, Field(gt=0, le=604800),
                           Expect("1-604800 seconds (7 days, the longest a presigned URL can live)")]
RedisUrl = Annotated[str, AfterValidator(check_redis_url)]
MongoUri = Annotated[str, _starts_with("mongodb://", "mongodb+srv://")]
WebUrl = Annotated[str, _starts_with("http://", "https://")]
FernetKeys = Annotated[
    tuple[str, ...], BeforeValidator(_comma_list), AfterValidator(lambda keys: tuple(_fernet_key(k) for k in keys)),
    Expect("a comma list of Fernet keys (32 url-safe base64 bytes each: python -m ops.cli encryption-key)"),
]
Rate = Annotated[str, AfterValidator(check_rate),
                 Expect("a rate such as 600/minute, or several joined by ';' (10/second;1000/hour)")]
DropboxFolder = Annotated[
    str,
    BeforeValidator(_dropbox_folder),
    Expect("a Dropbox folder path such as /pdf-jobs or /Reports/2026 (no '.' or '..' parts, no backslash)"),
]


def _existing_directory(value: Path) -> Path:
    if not value.is_dir():
        raise ValueError("must be an existing directory")
    return value


def _image_file(value: Path) -> Path:
    if value.suffix.lower() not in (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"):
        raise ValueError("must be a .png, .jpg, .jpeg, .gif, .svg or .webp image")
    if not value.is_file():
        raise ValueError("must be a readable image file (no such file)")
    return value


def _time_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as Asia/Jakarta") from None
    return value


ExistingDirectory = Annotated[Path, AfterValidator(_existing_directory)]
ImageFile = Annotated[Path, AfterValidator(_image_file)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]
SecondsOrZero = Annotated[float, Field(ge=0), Expect("0 or a positive number of seconds")]


def env_name(field_name: str, field: FieldInfo) -> str:
    """The environment variable of a field: its alias, else its name upper-cased."""
    return field.validation_alias if isinstance(field.validation_alias, str) else field_name.upper()


class EnvironSource(PydanticBaseSettingsSource):
    """The fields' variables in a mapping (os.environ or a test's dict); blank counts as unset."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The stripped value of the field's variable, or None when unset or blank."""
        value = self.environ.get(env_name(field_name, field), "").strip()
        return value or None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """The set variables by field name, as the stock sources give them."""
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, is_complex = self.get_field_value(field, name)
            if value is not None:
                values[key] = self.prepare_field_value(name, field, value, is_complex)
        return values


class Settings(BaseSettings):
    """All configuration of the service. Build with `Settings.from_env(os.environ)`."""

    # Comma lists stay comma lists and API_CLIENTS goes to parse_clients: no JSON decoding of
    # complex values. Fields may be given by name although two have an alias (their variable).
    model_config = SettingsConfigDict(frozen=True, validate_by_name=True, enable_decoding=False)

    app_env: AppEnv = Field(
        "development",
        description="Profile: development, staging or production (defaults of WORKERS, MAX_QUEUE_SIZE, JOB_TIMEOUT)")
    port: Port = Field(8000, description="API port")
    host: str = Field("127.0.0.1", description="API bind address")
    api_processes: PositiveInt = Field(2, description="API worker processes (gunicorn, gevent)")
    data_dir: Path = Field(
        Path("./var"), description="Data of the embedded defaults: SQLite file, PDFs, Redis AOF and dump, logs")
    redis_url: RedisUrl | None = Field(
        None, repr=False, examples=["redis://127.0.0.1:6379/0"],
        description="External Redis (redis://, rediss://, unix://) or Redis Sentinel (redis+sentinel://[:password@]"
        "host:port[,host:port...]/service_name[/db], rediss+sentinel:// with TLS); unset: the project starts its "
        "own redis-server")
    embedded_redis_port: PortOrZero = Field(
        0, description="Embedded Redis: also listen on 127.0.0.1:PORT (0 = Unix socket in DATA_DIR/redis only)")
    database_url: str | None = Field(
        None, repr=False, examples=["postgresql+psycopg://user:pass@host/db"],
        description="SQLAlchemy URL (PostgreSQL in production); unset: SQLite in DATA_DIR")
    db_pool_size: PositiveInt = Field(
        5, description="SQL connections each process keeps open (PostgreSQL); a host opens up to "
        "processes x (DB_POOL_SIZE + DB_MAX_OVERFLOW), printed at start")
    db_max_overflow: NonNegativeInt = Field(
        10, description="SQL connections a process may open beyond DB_POOL_SIZE under load, closed when returned")
    db_prepared_statements: Flag = Field(
        True, description="Let PostgreSQL prepare the statements a connection runs often; false behind PgBouncer "
        "in transaction mode before 1.21 (or another pooler that moves sessions between server connections)")
    mongo_uri: MongoUri | None = Field(
        None, repr=False, examples=["mongodb://127.0.0.1:27017"],
        description="MongoDB: enables the workflow.psikotes_v2 record and data source")
    mongo_database: str = Field("workflow", description="MongoDB database of the report documents")
    mongo_collection: str = Field("psikotes_v2", description="MongoDB collection of the report documents")
    mongo_code_field: str = Field("code", description="Document field matched against a job's code")
    mongo_product_field: str = Field("product_id", description="Document field matched against a job's productId")
    mongo_data_field: str | None = Field(None, description="Dotted path of the report data in a document; unset: all")
    api_clients: tuple[ClientConfig, ...] = Field(
        (), repr=False, examples=['[{"name":"n8n","api_key":"change-me","webhook_secret":"whsec_..."}]'],
        description='API clients: JSON list of {"name", "api_key", "webhook_secret", "callback_auth_header"?: '
        '{"name", "value"}, "admin"?, "rate_limit"?, "max_queued"?, "previous_webhook_secret"?}; unset: `make run` '
        'creates a development client and prints its key')
    callback_allowed_hosts: Hosts = Field(
        (), examples=["n8n.internal:5678,10.0.0.0/8"],
        description="Comma list of host, host:port or CIDR that callbacks may reach besides public hosts")
    roles: Roles = Field(
        ROLES, examples=["worker,webhook"],
        description="Which programs this host runs: comma list of api, worker (PDF workers), webhook (senders), "
        "scheduler (one is active across hosts)")
    workers: PositiveInt = Field(2, description="PDF worker processes")
    webhook_workers: PositiveInt = Field(1, description="Webhook sender processes")
    webhook_concurrency: PositiveInt = Field(8, description="Webhook attempts each sender process makes at once")
    max_queue_size: PositiveInt = Field(
        100, description="Queued and scheduled jobs at which submit answers 503 + Retry-After")
    rate_limit: Rate = Field(
        "600/minute", description="Requests one client may make (per client, across API processes; a client "
        "may carry its own rate_limit); over it: 429 + Retry-After")
    max_queued_per_client: PositiveInt = Field(
        1000, description="Queued and scheduled jobs one client may have (a client may carry its own max_queued); "
        "over it submit answers 429 + Retry-After. It binds only below MAX_QUEUE_SIZE: lower it when several "
        "clients share the service")
    rate_limit_pause: Annotated[float, Field(ge=0, le=10), Expect("0 to 10 seconds")] = Field(
        1.0, description="Seconds a refused request (429) is held before its answer (at most its Retry-After): a "
        "client looping on 429 cannot take the cores from the others (0: answer at once)")
    auth_failure_limit: Rate = Field(
        "20/minute", description="Failed authentications one source address may make before it gets 429")
    secrets_encryption_key: FernetKeys = Field(
        (), repr=False, examples=["<output of: python -m ops.cli encryption-key>"],
        description="Comma list of Fernet keys: webhook secrets and callback headers of CLI-created clients are "
        "stored encrypted with the first (the others still decrypt); unset: stored in plain text")
    job_timeout: PositiveInt = Field(300, description="Seconds a job may run")
    sync_timeout: PositiveInt = Field(60, description="Seconds POST /api/reports/generate waits before answering 202")
    job_watch_interval: PositiveFloat = Field(
        0.5, description="Seconds between job state checks of SSE streams and the synchronous endpoint")
    events_max_seconds: PositiveInt = Field(
        3600, description="Seconds an SSE stream (GET /api/jobs/ID/events) stays open at most; clients reconnect")
    cleanup_completed_after: PositiveInt = Field(3600, description="Seconds RQ keeps finished job data (SQL rows stay)")
    pdf_retention_days: PositiveInt = Field(30, description="Days stored PDFs are kept")
    job_retry_delays: Delays = Field(
        (60, 120, 240), description="Seconds between job retries, comma list (its length is the number of retries)")
    webhook_retry_delays: Delays = Field(
        (5, 300, 1800, 7200, 18000, 36000), description="Seconds between webhook attempts, comma list")
    webhook_timeout: PositiveFloat = Field(15.0, description="Seconds one webhook attempt may take")
    max_body_bytes: PositiveInt = Field(1024 * 1024, description="Largest request body in bytes")
    batch_max_items: PositiveInt = Field(1000, description="Items one POST /api/reports/generate-batch may carry")
    batch_max_body_bytes: PositiveInt = Field(
        16 * 1024 * 1024, description="Largest body of POST /api/reports/generate-batch in bytes")
    public_base_url: WebUrl | None = Field(
        None, examples=["https://pdf.example.com"],
        description="Base of the absolute download_url in webhooks; unset: http://127.0.0.1:PORT")
    dashboard_username: str = Field("admin", validation_alias="RQ_DASHBOARD_USERNAME", description="rq-dashboard login")
    dashboard_password: str | None = Field(
        None, validation_alias="RQ_DASHBOARD_PASSWORD", repr=False,
        description="rq-dashboard password; unset: generated once into DATA_DIR/dashboard-password")
    log_level: LogLevel = Field(
        "INFO",
        description="DEBUG, INFO, WARNING, ERROR or CRITICAL; lines below WARNING are written at most 0.2 s late")
    redis_socket_timeout: PositiveFloat = Field(
        0.5, description="Seconds an API call waits for Redis (the job is in SQL first either way)")
    reconcile_interval: PositiveInt = Field(15, description="Seconds between reconciler passes")
    stale_job_grace: PositiveInt = Field(
        30, description="Seconds without a worker lease before a running job counts as orphaned and is re-queued")
    scheduler_interval: PositiveFloat = Field(
        1.0, description="Seconds between scheduler ticks (due retries, runAt, recurring schedules)")
    schedule_missed_after: PositiveInt = Field(
        60, description="Seconds after its time a schedule's run counts as missed (the scheduler was down); the "
        "schedule's `missed` setting then says whether it runs once now or is skipped")
    scheduler_lease_seconds: PositiveInt = Field(
        10, description="Seconds the active scheduler's lease in Redis lives: with schedulers on several hosts, "
        "a standby takes over within this after the active one's host dies")
    worker_nice: Niceness = Field(
        10, description="CPU niceness of PDF worker processes (0-19): on a host shared with the API, rendering "
        "yields the CPU to requests")
    worker_sched_idle: bool = Field(
        True, description="Run PDF workers under Linux's SCHED_IDLE CPU policy: any other process of the host "
        "(the API first) takes the CPU from a render at once, and renders use every cycle left idle; false: "
        "plain WORKER_NICE")
    alert_queue_length: PositiveInt = Field(100, description="Alert of GET /api/queue/stats: waiting jobs above this")
    alert_failure_rate: Fraction = Field(
        0.05, description="Alert of GET /api/queue/stats: last hour's failure rate above this (0.05 = 5 %)")
    alert_avg_processing_seconds: PositiveFloat = Field(
        300.0, description="Alert of GET /api/queue/stats: average processing seconds above this")
    storage_backend: StorageBackend = Field(
        "local", description="Where PDFs are kept: local (one host), gdrive, s3 or dropbox (shared by every host)")
    host_name: HostName = Field(
        default_factory=socket.gethostname, description="This host's name, recorded with each PDF it stores; "
        "unset: the machine's host name")
    s3_bucket: str | None = Field(None, examples=["pdf-jobs"], description="S3 bucket (STORAGE_BACKEND=s3 needs it)")
    s3_prefix: KeyPrefix = Field("", examples=["pdf-jobs/prod"], description="Key prefix of the PDFs in the bucket")
    s3_endpoint_url: WebUrl | None = Field(
        None, examples=["http://minio.internal:9000"],
        description="S3 endpoint for MinIO, R2, Ceph or GCS interop; unset: AWS")
    s3_region: str | None = Field(
        None, examples=["eu-central-1"], description="The bucket's region (auto for R2); unset: boto3's own lookup")
    s3_download: Annotated[Literal["stream", "redirect"], Expect("one of stream, redirect")] = Field(
        "stream", description="How downloads of S3 objects are served: stream through the API, or redirect (302) "
        "to a presigned URL")
    s3_presign_seconds: PresignSeconds = Field(300, description="Seconds a presigned download URL stays valid")
    templates_dir: ExistingDirectory | None = Field(
        None, examples=["./templates"],
        description="Extra products without Python (docs/report-data.md): a Typst report PRODUCT.typ + "
        "PRODUCT.schema.json, or a fillable form PRODUCT.pdf + PRODUCT.json mapping")
    templates_reload_interval: SecondsOrZero = Field(
        2.0, description="Seconds between looks at TEMPLATES_DIR for changed files; 0: reload on SIGHUP only")
    preview_timeout: PositiveFloat = Field(
        10.0, description="Seconds POST /api/templates/PRODUCT/preview may take (it renders in a child process)")
    preview_max_bytes: PositiveInt = Field(256 * 1024, description="Largest body of a template preview in bytes")
    report_org_name: str = Field("", examples=["Biro Psikologi Cahaya Mandiri"],
                                 description="Organisation name in the letterhead of the reports; empty: left out")
    report_org_address: str = Field("", examples=["Jl. Kaliurang Km 5 No. 12, Yogyakarta - (0274) 555-0123"],
                                    description="Address line under the organisation name; empty: left out")
    report_org_city: str = Field("", examples=["Yogyakarta"],
                                 description="Place written before the date of a report's signature block")
    report_logo_file: ImageFile | None = Field(
        None, examples=["/etc/pdf-jobs/logo.png"],
        description="Logo of the letterhead: a PNG, JPEG, GIF, WebP or SVG file")
    report_psychologist_name: str = Field(
        "", description="Psychologist who signs a report whose data names none (data.psychologist)")
    report_psychologist_licence: str = Field("", description="That psychologist's practice licence number (SIPP)")
    report_timezone: TimeZone = Field("UTC", examples=["Asia/Jakarta"],
                                      description="Time zone of the date a report is generated on")
    google_drive_credentials_file: Path | None = Field(
        None, examples=["/etc/pdf-jobs/drive-service-account.json"],
        description="Google Drive service-account JSON key file (STORAGE_BACKEND=gdrive needs it)")
    google_drive_folder_id: str | None = Field(None, description="Drive folder (of a shared drive) for the PDFs")
    google_drive_share_with: str | None = Field(
        None, examples=["group:hr@example.com,domain:example.com:commenter"],
        description="Comma list of user:EMAIL, group:EMAIL, domain:DOMAIN (optionally :reader, :commenter, :writer)")
    google_drive_share_anyone: Flag = Field(False, description="Share each PDF with anyone who has the link")
    google_drive_api_endpoint: WebUrl | None = Field(None, description="Drive API endpoint override (tests use a fake)")
    dropbox_app_key: str | None = Field(None, description="Dropbox app key (STORAGE_BACKEND=dropbox needs it)")
    dropbox_app_secret: str | None = Field(
        None, repr=False, description="Dropbox app secret (not needed when the refresh token came from a PKCE flow)")
    dropbox_refresh_token: str | None = Field(
        None, repr=False, description="Dropbox refresh token (offline access) of the account that keeps the PDFs "
        "(STORAGE_BACKEND=dropbox needs it)")
    dropbox_folder: DropboxFolder = Field(
        "/pdf-jobs", description="Dropbox folder of the PDFs (inside the app folder for App-folder apps); "
        "/ for the root")
    dropbox_api_endpoint: WebUrl | None = Field(
        None, description="Dropbox API root used instead of api.dropboxapi.com and content.dropboxapi.com "
        "(tests use a fake)")
    bench_null_render: Flag = Field(
        False, description="Benchmarks only: register the product 'benchNull', whose render returns a tiny fixed PDF "
        "(measures everything but rendering)")
    loopback_only: Flag = Field(False, description="Refuse every non-loopback connection (the test suite sets this)")

    @field_validator("api_clients", mode="before")
    @classmethod
    def _parse_clients(cls, value: Any) -> Any:
        return parse_clients(value) if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments only: `Settings()` in code is the defaults; the environment comes via from_env."""
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default `os.environ`), reporting every problem at once."""
        values = EnvironSource(cls, os.environ if environ is None else environ)()
        profile = PROFILES.get(values.get("app_env", ""), PROFILES["development"])
        problems = []
        if values.get("storage_backend") == "gdrive" and "google_drive_credentials_file" not in values:
            problems.append("STORAGE_BACKEND=gdrive needs GOOGLE_DRIVE_CREDENTIALS_FILE")
        if values.get("storage_backend") == "s3" and "s3_bucket" not in values:
            problems.append("STORAGE_BACKEND=s3 needs S3_BUCKET")
        if values.get("storage_backend") == "dropbox":
            missing = [name.upper() for name in ("dropbox_app_key", "dropbox_refresh_token") if name not in values]
            if missing:
                problems.append(f"STORAGE_BACKEND=dropbox needs {' and '.join(missing)}")
        try:
            settings = cls(**{**profile, **values})
        except ValidationError as exc:
            raise SettingsError(_describe(exc, values) + problems) from None
        if problems:
            raise SettingsError(problems)
        return settings

    def with_changes(self, **changes: Any) -> Settings:
        """Return a validated copy with some fields replaced (tests and tools build variants this way)."""
        return type(self)(**{**dict(self), **changes})

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


def _describe(error: ValidationError, raw: Mapping[str, str]) -> list[str]:
    """One line per bad variable, in rq's manner: `JOB_TIMEOUT must be a positive integer, got 'abc'`."""
    problems: dict[str, str] = {}
    for detail in error.errors():
        name = str(detail["loc"][0])
        if name in problems:  # each item of a list may fail: one line for the variable
            continue
        field = Settings.model_fields[name]
        expect = next((f"must be {item.text}" for item in field.metadata if isinstance(item, Expect)), None)
        text = expect or str(detail.get("ctx", {}).get("error", detail["msg"]))  # else the ValueError's own words
        got = "" if field.repr is False else f", got {raw.get(name, detail['input'])!r}"  # secrets never echoed
        problems[name] = f"{env_name(name, field)} {text}{got}"
    return list(problems.values())


def parse_clients(value: str) -> tuple[ClientConfig, ...]:
    """Parse API_CLIENTS: a JSON list of {name, api_key, webhook_secret, callback_auth_header?, admin?}."""
    try:
        items = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"must be a JSON list of client objects ({exc.msg} at character {exc.pos})") from None
    if not isinstance(items, list):
        raise ValueError("must be a JSON list of client objects")
    return tuple(_client(index, item) for index, item in enumerate(items))


def _client(index: int, item: Any) -> ClientConfig:
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
    return ClientConfig(
        name=str(item["name"]),
        api_key=str(item["api_key"]),
        webhook_secret=str(item["webhook_secret"]),
        callback_auth_header=header,
        admin=bool(item.get("admin", False)),
        rate_limit=_client_rate(index, item.get("rate_limit")),
        max_queued=_client_max_queued(index, item.get("max_queued")),
        previous_webhook_secret=str(item["previous_webhook_secret"]) if item.get("previous_webhook_secret") else None,
    )


def _client_rate(index: int, value: Any) -> str | None:
    if value is None:
        return None
    try:
        return check_rate(str(value))
    except ValueError as exc:
        raise ValueError(f"item {index}: rate_limit {exc}") from None


def _client_max_queued(index: int, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"item {index}: max_queued must be a positive integer, got {value!r}")
    return value
