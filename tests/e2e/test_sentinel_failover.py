"""Redis Sentinel for real: master + replica + three sentinels; the master SIGKILLed during a run of 100 jobs.

Replication is asynchronous: writes the master acknowledged but had not yet sent to the replica are
gone after the failover. The test forces such a loss (the replica is stopped while 40 jobs are
handed to RQ, its link cut, then the master is killed) and shows that every accepted job still completes: each
was committed to SQL before its hand-over, and the reconciler re-queues what the new master lacks.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import redis

from ops.sentinel_group import SentinelGroup
from tests.conftest import sample_request
from tests.e2e.conftest import Api, start_service


def submit(api: Api, prefix: str, count: int) -> list[str]:
    ids = []
    for index in range(count):
        response = api.submit(sample_request() | {"code": f"{prefix}-{index}"})
        assert response.status_code == 202, response.text
        ids.append(response.json()["job_id"])
    return ids


def wait_all(api: Api, ids: list[str], timeout: float) -> dict[str, str]:
    """The final status of every job (polled until none is pending or time runs out)."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    pending = list(ids)
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            status = api.status(job_id)["status"]
            if status in ("completed", "failed", "cancelled"):
                states[job_id] = status
                pending.remove(job_id)
        time.sleep(0.5)
    return states | {job_id: "pending" for job_id in pending}


def test_master_killed_mid_run_every_accepted_job_completes(tmp_path: Path) -> None:
    group = SentinelGroup(tmp_path / "redis").start()
    service = None
    try:
        service = start_service(tmp_path / "var", REDIS_URL=group.url(), WORKERS="2", API_PROCESSES="1")
        api = Api(service)
        first = submit(api, "before", 60)
        while sum(api.status(job_id)["status"] == "completed" for job_id in first[:10]) < 5:
            time.sleep(0.2)
        # The workers pause (the jobs they run finish) so that the next 40 stay queued in Redis only.
        service.ctl("stop", "pdf_worker:*")
        master = group.master_port()
        replica = next(port for port in group.data_ports if port != master)
        # The replica falls behind: stopped, and its link cut, so nothing more reaches it before the master dies.
        group.processes[replica].send_signal(signal.SIGSTOP)
        redis.Redis(port=master).client_kill_filter(_type="slave")  # redis-py names replicas "slave"
        lost = submit(api, "unreplicated", 40)
        old = group.kill_master()
        group.processes[replica].send_signal(signal.SIGCONT)
        new = group.wait_failover(old)
        service.ctl("start", "pdf_worker:*")
        states = wait_all(api, first + lost, timeout=300)
        log = service.log_path.read_text()
    finally:
        if service is not None:
            service.stop()
        group.stop()

    assert new == replica
    assert sorted(set(states.values())) == ["completed"], {s: list(states.values()).count(s) for s in states.values()}
    requeued = {job_id for job_id in lost if f"job={job_id} event=requeued" in log}
    assert len(requeued) == len(lost), (len(requeued), log.count("event=requeued"))
