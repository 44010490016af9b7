"""The real service under supervisord (embedded Redis, gunicorn API, RQ workers, scheduler)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ops.harness import RunningService
from tests.conftest import CLIENT_A, auth, clients_json, database_kinds, own_database

E2E_ENV = {
    "API_CLIENTS": clients_json(),
    "CALLBACK_ALLOWED_HOSTS": "127.0.0.0/8,::1/128",
    "WORKERS": "2",
    "JOB_RETRY_DELAYS": "1,1,1",
    "WEBHOOK_RETRY_DELAYS": "1,1,1",
    "RECONCILE_INTERVAL": "2",
    "STALE_JOB_GRACE": "3",
    "LOOPBACK_ONLY": "1",
    # the tests poll job status in tight loops (200 jobs: thousands of requests a minute); the limits have
    # tests of their own (tests/e2e/test_edge_e2e.py, tests/api/test_limits.py)
    "RATE_LIMIT": "100000/minute",
}


class Api:
    """Small HTTP helper bound to a running service and one client."""

    def __init__(self, service: RunningService, client=CLIENT_A):  # noqa: ANN001
        self.service = service
        self.base = service.base_url
        self.headers = auth(client)
        self.http = requests.Session()

    def submit(self, body: dict, **headers: str) -> requests.Response:
        return self.http.post(f"{self.base}/api/reports/generate-async", json=body,
                              headers=self.headers | headers, timeout=10)

    def status(self, job_id: str) -> dict:
        response = self.http.get(f"{self.base}/api/jobs/{job_id}", headers=self.headers, timeout=10)
        assert response.status_code == 200, f"status of {job_id}: {response.status_code} {response.text}"
        return response.json()

    def get(self, path: str, **kwargs) -> requests.Response:  # noqa: ANN003
        return self.http.get(f"{self.base}{path}", headers=self.headers, timeout=10, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:  # noqa: ANN003
        return self.http.post(f"{self.base}{path}", headers=self.headers, timeout=10, **kwargs)

    def wait_for(self, job_id: str, states: tuple[str, ...] = ("completed", "failed", "cancelled"),
                 timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.status(job_id)
            if body["status"] in states:
                return body
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not reach {states} in {timeout} s: {body}")


def poll(predicate, timeout: float = 30.0, what: str = "condition", interval: float = 0.05):  # noqa: ANN001, ANN201
    """Call `predicate` every `interval` s until it returns something truthy, and return that; raise after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s")


def start_service(data_dir: Path, database_url: str | None = None, **env: str) -> RunningService:
    """Start the whole service with the e2e environment plus `env`, on `database_url` (unset: SQLite)."""
    database = {"DATABASE_URL": database_url} if database_url else {}
    return RunningService(data_dir, E2E_ENV | database | env).start()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module's service runs once per database kind, for each test not marked sqlite_only."""
    if "service_database" in metafunc.fixturenames:
        metafunc.parametrize("service_database", database_kinds(metafunc), indirect=True, scope="module")


@pytest.fixture(scope="module")
def service_database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """DATABASE_URL of a module's service: SQLite in its DATA_DIR, or an empty PostgreSQL database of its own."""
    yield from own_database(request, request.param)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, service_database: str | None) -> Iterator[RunningService]:
    """One running service per test module and database kind."""
    running = start_service(tmp_path_factory.mktemp("service") / "var", service_database)
    yield running
    running.stop()


@pytest.fixture
def api(service: RunningService) -> Api:
    """HTTP helper for client 'acme'."""
    return Api(service)
