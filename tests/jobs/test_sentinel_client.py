"""Every Redis user through Sentinel for real: the client, an RQ worker, RQ's scheduler locks, rq-dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.sentinel import SentinelConnectionPool

from config import Settings
from jobs.runtime import build_runtime, connect_redis, set_runtime
from ops.sentinel_group import SentinelGroup
from store.db import migrate
from tests.conftest import CLIENTS, auth, run_jobs, sample_request


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    with SentinelGroup(tmp_path_factory.mktemp("sentinel")) as running:
        yield running


def test_client_follows_the_master_through_a_failover(group: SentinelGroup) -> None:
    client = connect_redis(Settings(redis_url=group.url(db=3)), socket_timeout=None)
    client.set("before", "1")
    assert isinstance(client.connection_pool, SentinelConnectionPool)

    old = group.kill_master()
    new = group.wait_failover(old)

    assert client.get("before") == b"1"  # replicated before the kill; now read from the new master
    assert client.set("after", "2") and client.connection_pool.get_master_address()[1] == new


def test_api_worker_scheduler_and_dashboard_on_sentinel(group: SentinelGroup, tmp_path: Path) -> None:
    from api import create_app
    from workers.scheduler import RetryScheduler

    settings = Settings(data_dir=tmp_path, redis_url=group.url(db=4), api_clients=CLIENTS, loopback_only=True,
                        dashboard_password="dash")
    tmp_path.mkdir(exist_ok=True)
    migrate(settings.sqlalchemy_url)
    rt = build_runtime(settings, socket_timeout=2)
    set_runtime(rt)  # the job function's runtime, as a worker process builds it
    client = create_app(runtime=rt).test_client()

    job_id = client.post("/api/reports/generate-async", json=sample_request(), headers=auth()).json["job_id"]
    run_jobs(rt)
    scheduler = RetryScheduler(rt, "this-host.1.cafe0000")
    scheduler(rt)  # RQ's scheduler rebuilds its own connection from ours (rq.connections.parse_connection)

    assert client.get(f"/api/jobs/{job_id}", headers=auth()).json["status"] == "completed"
    assert scheduler.scheduler.acquired_locks == {"high", "normal", "low"}
    page = client.get("/rq/0/data/queues.json", auth=("admin", "dash"))
    assert page.status_code == 200 and {q["name"] for q in page.json["queues"]} >= {"normal"}
    scheduler.stop()
    set_runtime(None)
    rt.engine.dispose()


def test_rate_limits_through_sentinel(group: SentinelGroup, tmp_path: Path) -> None:
    from api import create_app

    settings = Settings(data_dir=tmp_path, redis_url=group.url(db=5), api_clients=CLIENTS, loopback_only=True,
                        rate_limit="2/minute", rate_limit_pause=0)
    migrate(settings.sqlalchemy_url)
    rt = build_runtime(settings, socket_timeout=2)
    client = create_app(runtime=rt).test_client()
    assert [client.get("/api/jobs", headers=auth()).status_code for _ in range(3)] == [200, 200, 429]
    assert any(key.startswith(b"LIMITS") for key in rt.redis.keys())  # the counts live on the master
    rt.engine.dispose()
