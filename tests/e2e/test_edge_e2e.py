"""The edge on the real service (gunicorn with two API processes, supervisord, embedded Redis): private files in
DATA_DIR, a client disabled by the CLI refused by every API process at once, one rate limit across processes,
the access log."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ops.harness import RunningService
from tests.conftest import ADMIN, CLIENT_A, CLIENT_B, PROJECT_DIR, sample_request
from tests.e2e.conftest import Api, start_service

LIMITED = {"name": CLIENT_B.name, "api_key": CLIENT_B.api_key, "webhook_secret": CLIENT_B.webhook_secret,
           "rate_limit": "30/minute"}
CLIENTS = [{"name": c.name, "api_key": c.api_key, "webhook_secret": c.webhook_secret, "admin": c.admin}
           for c in (CLIENT_A, ADMIN)] + [LIMITED]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """The service with two API processes and a client of its own rate limit."""
    running = start_service(tmp_path_factory.mktemp("edge") / "var", API_PROCESSES="2",
                            API_CLIENTS=json.dumps(CLIENTS), RATE_LIMIT_PAUSE="0.1")
    yield running
    running.stop()


def cli(service: RunningService, *args: str) -> str:
    """`python -m ops.cli ARGS` with the service's environment, as an operator runs it."""
    result = subprocess.run([sys.executable, "-m", "ops.cli", *args], cwd=PROJECT_DIR, env=service.env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_data_dir_and_every_file_in_it_are_private(service: RunningService) -> None:
    api = Api(service)
    job_id = api.submit(sample_request() | {"code": "private"}).json()["job_id"]
    assert api.wait_for(job_id)["status"] == "completed"
    open_to_others = []
    for path in [service.data_dir, *service.data_dir.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode) or stat.S_ISSOCK(mode):
            continue  # sockets: redis unixsocketperm 700 and supervisor chmod=0700 guard them
        if mode & 0o077:
            open_to_others.append(f"{path.relative_to(service.data_dir)} {oct(mode & 0o777)}")
    assert open_to_others == [], "\n".join(open_to_others)
    assert list(service.data_dir.rglob("*.pdf")) and (service.data_dir / "pdfjobs.sqlite3").exists()
    assert oct(service.data_dir.stat().st_mode & 0o777) == "0o700"


def test_a_disabled_client_is_refused_by_every_api_process_at_its_next_request(service: RunningService) -> None:
    lines = dict(line.split(":", 1) for line in cli(service, "create-client", "e2e-n8n").splitlines())
    key = lines["api key"].strip()
    http = [requests.Session() for _ in range(6)]  # separate connections reach both gunicorn workers
    headers = {"X-API-Key": key}
    assert {s.get(f"{service.base_url}/api/jobs", headers=headers, timeout=10).status_code for s in http} == {200}
    cli(service, "disable-client", "e2e-n8n")
    statuses = [s.get(f"{service.base_url}/api/jobs", headers=headers, timeout=10).status_code
                for s in http for _ in range(3)]
    assert statuses == [401] * len(statuses)


def test_one_rate_limit_across_api_processes(service: RunningService) -> None:
    api = Api(service, CLIENT_B)
    sessions = [requests.Session() for _ in range(4)]
    statuses = Counter(sessions[i % 4].get(f"{service.base_url}/api/jobs", headers=api.headers, timeout=10).status_code
                       for i in range(40))
    assert statuses == {200: 30, 429: 10}


def test_access_log_lines_reach_the_service_log(service: RunningService) -> None:
    response = requests.get(f"{service.base_url}/api/jobs", headers={"Authorization": f"Bearer {CLIENT_A.api_key}",
                                                                     "X-Request-Id": "e2e-access-1"}, timeout=10)
    assert response.headers["X-Request-Id"] == "e2e-access-1"
    log = _wait_for_line(service.log_path, "request_id=e2e-access-1")
    assert "method=GET path=/api/jobs status=200 client=acme duration_ms=" in log


def _wait_for_line(path: Path, needle: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if needle in line:
                return line
        time.sleep(0.2)
    raise AssertionError(f"no line with {needle!r} in {path}")
