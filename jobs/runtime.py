"""Per-process resources (settings, Redis, SQL, templates, storage), built once on first use."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from redis.sentinel import Sentinel
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from config.redis_urls import is_sentinel_url, parse_sentinel_url
from jobs.retry_policy import STORAGE_BACKOFF, api_redis_retry
from store.db import make_engine, make_session_factory

log = logging.getLogger(__name__)


def redis_url(settings: Settings) -> str:
    """REDIS_URL, or the Unix socket of the embedded Redis in DATA_DIR."""
    if settings.redis_url:
        return settings.redis_url
    return f"unix://{(settings.embedded_redis_dir / 'redis.sock').resolve()}"


def connect_redis(settings: Settings, *, socket_timeout: float | None) -> Redis:
    """The one way every process builds its Redis client (a Sentinel-managed master for the sentinel form).

    API calls use short timeouts and one quick retry so an outage never stalls a request.
    """
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout or 5,
        "health_check_interval": 30,
    }
    if socket_timeout is not None:
        options["retry"] = api_redis_retry()  # a request must fail fast instead of backing off for seconds
    url = redis_url(settings)
    if is_sentinel_url(url):
        return sentinel_master(url, options)
    return Redis.from_url(url, **options)


def sentinel_master(url: str, options: dict[str, Any]) -> Redis:
    """A client of the master that the sentinels name; after a failover it reconnects to the new one."""
    parsed = parse_sentinel_url(url)
    timeouts = {name: options[name] for name in ("socket_timeout", "socket_connect_timeout")}
    sentinel = Sentinel(list(parsed.sentinels), sentinel_kwargs=timeouts | parsed.sentinel_kwargs())
    return sentinel.master_for(parsed.service_name, **options, **parsed.master_kwargs())


@dataclass
class Runtime:
    """What a process needs to run jobs or serve requests."""

    settings: Settings
    redis: Redis
    engine: Engine
    session_factory: sessionmaker[Session]
    overrides: dict[str, Any] = field(default_factory=dict)

    def session(self) -> Session:
        """A new SQL session (use as a context manager)."""
        return self.session_factory()

    def open_connections(self) -> None:
        """Open an SQL and a Redis connection now, so that the first job or request does not wait for them.
        A dependency that is down is only logged: the process starts anyway and connects at first use (a
        process restarted during an outage must not crash-loop)."""
        try:
            with self.session() as session:
                session.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            log.warning("event=sql_unavailable_at_start reason=%r", str(exc).splitlines()[0])
        try:
            self.redis.ping()
        except RedisError as exc:
            log.warning("event=redis_unavailable_at_start reason=%r", str(exc).splitlines()[0])

    @cached_property
    def templates(self) -> Any:
        """The template catalog: loaded once per process, reloaded on SIGHUP or when TEMPLATES_DIR changes."""
        from render import TemplateCatalog

        if "templates" in self.overrides:
            return self.overrides["templates"]
        extra = ()
        if self.settings.bench_null_render:  # the bench's product whose render costs nothing
            from render.bench_null import BenchNullTemplate

            extra = (BenchNullTemplate(),)
        return TemplateCatalog(self.settings.templates_dir, report_context(self.settings),
                               reload_interval=self.settings.templates_reload_interval, extra=extra)

    @cached_property
    def storage(self) -> Any:
        """Where finished PDFs are kept (local disk, S3, Google Drive or Dropbox)."""
        from storage import build_storage

        return self.overrides.get("storage") or build_storage(self.settings, backoff=STORAGE_BACKOFF)

    @cached_property
    def mongo(self) -> Any:
        """The MongoDB sink and data source, or None when MONGO_URI is unset."""
        from store.mongo import build_mongo_sink

        return self.overrides.get("mongo") or build_mongo_sink(self.settings)


def report_context(settings: Settings) -> Any:
    """The letterhead and signature of every report, from the REPORT_* settings."""
    from render import ReportContext

    return ReportContext(
        organization_name=settings.report_org_name, organization_address=settings.report_org_address,
        organization_city=settings.report_org_city, logo_file=settings.report_logo_file,
        psychologist_name=settings.report_psychologist_name,
        psychologist_licence=settings.report_psychologist_licence, timezone=settings.report_timezone,
    )


def build_runtime(settings: Settings, *, socket_timeout: float | None = None, wal_checkpoints: bool = True,
                  polling_lock_wait: bool = False) -> Runtime:
    """Build the resources of one process from settings (see `make_engine` for `wal_checkpoints` and
    `polling_lock_wait`)."""
    engine = make_engine(settings.sqlalchemy_url, pool_size=settings.db_pool_size,
                         max_overflow=settings.db_max_overflow, wal_checkpoints=wal_checkpoints,
                         prepared_statements=settings.db_prepared_statements, polling_lock_wait=polling_lock_wait)
    return Runtime(
        settings=settings,
        redis=connect_redis(settings, socket_timeout=socket_timeout),
        engine=engine,
        session_factory=make_session_factory(engine),
    )


_current: Runtime | None = None


def get_runtime() -> Runtime:
    """The process-wide runtime, built from the environment on first use (job functions call this)."""
    global _current
    if _current is None:
        _current = build_runtime(Settings.from_env())
    return _current


def set_runtime(runtime: Runtime | None) -> None:
    """Install the process-wide runtime (entry points and in-process tests)."""
    global _current
    _current = runtime
