"""The service through PgBouncer in transaction mode: fewer server connections than service processes.

Every transaction may run on another server connection, so nothing may rely on session state across
transactions (session advisory locks, prepared statements kept on the server, SET without LOCAL).
Needs the pgbouncer binary (Debian: apt-get install pgbouncer); skipped without it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from ops.postgres_server import LocalPostgres
from tests.callbacks.receiver import Receiver
from tests.conftest import sample_request
from tests.e2e import pgbouncer
from tests.e2e.conftest import Api, start_service

pytestmark = pytest.mark.skipif(not pgbouncer.available(), reason="pgbouncer is not installed "
                                "(Debian: apt-get install pgbouncer)")
JOBS = 40
SERVER_CONNECTIONS = 4  # for 2 API processes, 2 workers, 1 sender and the scheduler: they must share


@pytest.fixture
def bouncer(postgres: LocalPostgres) -> Iterator[pgbouncer.PgBouncer]:
    """A PgBouncer in transaction mode in front of the session's PostgreSQL."""
    with pgbouncer.PgBouncer(postgres, pool_size=SERVER_CONNECTIONS) as running:
        yield running


def test_service_through_pgbouncer_in_transaction_mode_completes_every_job(
    tmp_path, postgres: LocalPostgres, bouncer: pgbouncer.PgBouncer, receiver: Receiver  # noqa: ANN001
) -> None:
    postgres.create_database("through_bouncer")
    # migrations go through it too; PgBouncer 1.18 keeps no prepared statements across server connections
    service = start_service(tmp_path / "var", bouncer.url("through_bouncer"), DB_PREPARED_STATEMENTS="false")
    try:
        api = Api(service)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(
                lambda i: api.submit(sample_request() | {"code": f"bounced-{i}", "callback": receiver.url()}),
                range(JOBS)))
        assert [answer.status_code for answer in answers] == [202] * JOBS, [a.text for a in answers]
        ids = [answer.json()["job_id"] for answer in answers]
        for job_id in ids:
            assert api.wait_for(job_id, timeout=120)["status"] == "completed"
        listed = api.get("/api/jobs", params={"limit": 100}).json()
        assert {job["job_id"] for job in listed["jobs"]} >= set(ids)
        assert api.get("/api/queue/stats").status_code == 200
        webhooks = {json.loads(recorded.body)["job_id"] for recorded in list(receiver.requests)}
        log = service.log_path.read_text(errors="replace")
    finally:
        service.stop()
    assert "prepared statement" not in log and "event=unhandled_error" not in log
    assert webhooks <= set(ids)
