"""Issue 17's Done-means test: three hosts against one PostgreSQL, one Redis behind Sentinel and S3 storage.

Host 1 runs the API and the scheduler; hosts 2 and 3 run PDF workers and webhook senders, each
under its own supervisord with its own DATA_DIR. 200 jobs are submitted through host 1; mid-run
host 2 is SIGKILLed whole (supervisord and every program) and so is the Redis master. Then all 200
complete, every PDF downloads through host 1, 200 distinct webhook ids are acknowledged, and
retention removes the objects from the bucket. Last, host 3 dies too and the no_workers alert fires.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from sqlalchemy import select, update

from config import Settings
from ops.harness import RunningService
from ops.sentinel_group import SentinelGroup
from ops.system_postgres import postgres_url
from store.models import JobRecord, utcnow
from tests.conftest import sample_request
from tests.e2e.conftest import E2E_ENV, Api, poll
from tests.e2e.test_sentinel_failover import wait_all
from tests.storage.s3_server import REGION, S3_TEST_ENV, s3_client

log = logging.getLogger(__name__)
JOBS = 200


def host(directory: Path, env: dict[str, str], name: str, roles: str) -> RunningService:
    return RunningService(directory / name, env | {"HOST_NAME": name, "ROLES": roles})


def cpu_priority(pid: int) -> tuple[int, int]:
    """A process's niceness and scheduling policy."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16]), os.sched_getscheduler(pid)


def test_three_hosts_survive_a_dead_worker_host_and_a_redis_failover(
        tmp_path: Path, s3_endpoint: str, s3_bucket: str, receiver) -> None:  # noqa: ANN001
    group = SentinelGroup(tmp_path / "redis").start()
    hosts: list[RunningService] = []
    with postgres_url() as database_url:
        env = E2E_ENV | S3_TEST_ENV | {
            "REDIS_URL": group.url(), "DATABASE_URL": database_url, "STORAGE_BACKEND": "s3",
            "S3_BUCKET": s3_bucket, "S3_PREFIX": "three-hosts", "S3_ENDPOINT_URL": s3_endpoint,
            "S3_REGION": REGION, "WORKERS": "2", "WEBHOOK_WORKERS": "1", "API_PROCESSES": "2",
            "SCHEDULER_LEASE_SECONDS": "5", "MAX_QUEUE_SIZE": "1000",
        }
        api_host = host(tmp_path, env, "host-1", "api,scheduler")
        env["PUBLIC_BASE_URL"] = api_host.base_url
        api_host.env["PUBLIC_BASE_URL"] = api_host.base_url
        api_host.settings = Settings.from_env(api_host.env)
        try:
            hosts.append(api_host.start(timeout=120))
            hosts += [host(tmp_path, env, name, "worker,webhook").start(timeout=120) for name in ("host-2", "host-3")]
            _, doomed, survivor = hosts
            api = Api(api_host)
            started = time.monotonic()
            ids = []
            for index in range(JOBS):
                response = api.submit(sample_request() | {"code": f"three-{index}", "callback": receiver.url("/hook")})
                assert response.status_code == 202, response.text
                ids.append(response.json()["job_id"])
                if index == JOBS // 4:  # mid-run, once host 2 has stored PDFs: it dies whole, and the Redis master
                    poll(lambda: _stored_by(api_host, ids, "host-2") >= 3, 60, "host 2 storing PDFs", interval=0.5)
                    doomed.kill_host()
                    old_master = group.kill_master()
            group.wait_failover(old_master)
            states = wait_all(api, ids, timeout=600)
            worker_priority = {cpu_priority(pid) for pid in survivor.program_pids("pdf_worker")}
            seconds = time.monotonic() - started
            log.warning("three hosts: %s jobs in %.1f s, %.1f jobs/s", JOBS, seconds, JOBS / seconds)
            downloads = [api.get(f"/api/jobs/{job_id}/download") for job_id in ids]
            acknowledged = poll(lambda: _acknowledged(receiver, ids), 120, "200 distinct webhooks", interval=0.5)
            by_host = poll(lambda: _workers_by_host(api) == {"host-3"}, 60, "only host-3's workers counted",
                           interval=0.5)
            bucket = s3_client(s3_endpoint)
            stored = bucket.list_objects_v2(Bucket=s3_bucket, Prefix="three-hosts/").get("KeyCount", 0)
            with api_host.session_factory()() as session:  # the PDFs are 31 days old now
                session.execute(update(JobRecord).where(JobRecord.job_id.in_(ids))
                                .values(completed_at=utcnow().replace(year=utcnow().year - 1)))
                session.commit()
            api_host.ctl("restart", "scheduler")  # retention runs at a scheduler's first tick as leader
            left = poll(
                lambda: bucket.list_objects_v2(Bucket=s3_bucket, Prefix="three-hosts/").get("KeyCount", 0) == 0,
                120, "retention emptying the bucket", interval=0.5)
            gone = api.get(f"/api/jobs/{ids[0]}/download")
            with api_host.session_factory()() as session:
                hosts_used = set(session.scalars(select(JobRecord.stored_by_host).where(JobRecord.job_id.in_(ids))))
            survivor.kill_host()  # the last worker host dies: the alert follows within a minute
            no_workers = poll(lambda: "no_workers" in _alerts(api), 60, "the no_workers alert", interval=0.5)
        finally:
            for running in hosts:
                running.stop()
            group.stop()

    assert sorted(set(states.values())) == ["completed"], states
    assert worker_priority == {(10, os.SCHED_IDLE)}  # WORKER_NICE's and WORKER_SCHED_IDLE's defaults
    assert all(r.status_code == 200 and r.content.startswith(b"%PDF-") for r in downloads)
    assert acknowledged and by_host
    assert stored == JOBS and left
    assert gone.status_code == 410
    assert hosts_used == {"host-2", "host-3"}  # both worker hosts rendered before host-2 died
    assert no_workers


def _acknowledged(receiver, ids: list[str]) -> bool:  # noqa: ANN001
    """Whether every job's webhook arrived, each under its own webhook id."""
    seen = {}
    for request in list(receiver.requests):
        seen[json.loads(request.body)["job_id"]] = request.headers["webhook-id"]
    return set(seen) == set(ids) and len(set(seen.values())) == len(ids)


def _stored_by(service: RunningService, ids: list[str], host_name: str) -> int:
    with service.session_factory()() as session:
        return len(session.scalars(select(JobRecord.job_id).where(
            JobRecord.job_id.in_(ids), JobRecord.stored_by_host == host_name)).all())


def _alerts(api: Api) -> set[str]:
    return {alert["name"] for alert in api.get("/api/queue/stats").json()["alerts"]}


def _workers_by_host(api: Api) -> set[str]:
    body = api.get("/api/queue/stats").json()
    return set((body.get("workers") or {}).get("by_host", {}))
