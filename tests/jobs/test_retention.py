"""Retention clean-up and the Redis durability check."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import redis as redis_lib
from sqlalchemy import update

from jobs.redis_check import durability_problems
from jobs.retention import purge_expired_pdfs
from ops import embedded_redis
from store.models import JobRecord, utcnow
from tests.conftest import auth, run_jobs, sample_request


def test_retention_removes_old_pdfs_and_download_answers_410(client, runtime) -> None:
    old = client.post("/api/reports/generate-async", json=sample_request(), headers=auth()).json["job_id"]
    new = client.post("/api/reports/generate-async", json=sample_request() | {"code": "fresh"},
                      headers=auth()).json["job_id"]
    run_jobs(runtime)
    with runtime.session() as session:
        session.execute(update(JobRecord).where(JobRecord.job_id == old)
                        .values(completed_at=utcnow() - timedelta(days=31)))
        session.commit()
        path = runtime.storage.path_of(session.get(JobRecord, old).file_path)
    assert path.exists()
    assert purge_expired_pdfs(runtime) == 1
    assert not path.exists()
    gone = client.get(f"/api/jobs/{old}/download", headers=auth())
    assert gone.status_code == 410 and "retention" in gone.json["message"]
    assert client.get(f"/api/jobs/{old}", headers=auth()).json["status"] == "completed"
    assert client.get(f"/api/jobs/{new}/download", headers=auth()).status_code == 200
    assert purge_expired_pdfs(runtime) == 0


def test_redis_check_accepts_embedded_config(redis) -> None:
    assert durability_problems(redis) == []


def test_redis_check_warns_about_no_persistence_and_eviction(tmp_path) -> None:
    sock = tmp_path / "careless.sock"
    server = subprocess.Popen(
        [str(embedded_redis.redis_server_binary()), "--port", "0", "--unixsocket", str(sock), "--dir", str(tmp_path),
         "--appendonly", "no", "--save", "", "--maxmemory-policy", "allkeys-lru"],
        stdout=subprocess.DEVNULL,
    )
    try:
        embedded_redis.wait_until_ready(sock, server)
        problems = durability_problems(redis_lib.Redis(unix_socket_path=str(sock)))
    finally:
        server.kill()
        server.wait()
    assert len(problems) == 2
    assert "no persistence" in problems[0] and "allkeys-lru" in problems[1]
