"""GET /api/queue/stats and GET /metrics, computed from the real Redis and SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families
from rq import Queue

from tests.conftest import auth, break_job_data, run_jobs, sample_request
from workers.rq_worker import PdfWorker

SUBMIT = "/api/reports/generate-async"


def submit(client, code: str, **changes) -> str:
    response = client.post(SUBMIT, json=sample_request() | {"code": code} | changes, headers=auth())
    assert response.status_code == 202, response.json
    return response.json["job_id"]


def fail_one(client, runtime, code: str) -> str:
    """A job that fails at once in the worker: its data is refused by the template."""
    response = client.post(SUBMIT, json=sample_request() | {"code": code}, headers=auth())
    assert response.status_code == 202, response.json
    break_job_data(runtime.session, response.json["job_id"])
    run_jobs(runtime)
    return response.json["job_id"]


def stats(client) -> dict:
    response = client.get("/api/queue/stats", headers=auth())
    assert response.status_code == 200, response.json
    return response.json


def alert_names(body: dict) -> set[str]:
    return {alert["name"] for alert in body["alerts"]}


def test_stats_of_an_idle_service_show_empty_queues_and_no_workers_alert(client) -> None:
    body = stats(client)
    assert body["queues"] == {"high": 0, "normal": 0, "low": 0}
    assert body["workers"] == {"total": 0, "busy": 0, "idle": 0, "by_host": {}}
    assert body["last_hour"] == {"completed": 0, "failed": 0, "cancelled": 0, "failure_rate": 0.0,
                                 "avg_processing_seconds": None, "p95_processing_seconds": None}
    assert alert_names(body) == {"no_workers"}
    assert client.get("/api/queue/stats").status_code == 401


def test_stats_count_queues_scheduled_and_workers(client, runtime) -> None:
    submit(client, "h", priority="high")
    submit(client, "n1")
    submit(client, "n2")
    submit(client, "later", runAt=(datetime.now(UTC) + timedelta(days=30)).isoformat())
    worker = PdfWorker([Queue("high", connection=runtime.redis)], connection=runtime.redis)
    worker.register_birth()
    worker.set_state("idle")
    try:
        body = stats(client)
    finally:
        worker.register_death()
    assert body["queues"] == {"high": 1, "normal": 2, "low": 0} and body["scheduled"] == 1
    assert body["webhook_queue"] == 0
    assert body["workers"] == {"total": 1, "busy": 0, "idle": 1,
                               "by_host": {worker.hostname: {"total": 1, "busy": 0, "idle": 1}}}
    assert "no_workers" not in alert_names(body)


def registered_worker(runtime, name: str, hostname: str, *, busy_with: str | None = None,
                      silent_for: float = 0.0) -> PdfWorker:
    """A PDF worker as RQ registers it (real keys in Redis), its last heartbeat `silent_for` seconds ago."""
    from datetime import timedelta

    from rq.utils import now, utcformat

    worker = PdfWorker([Queue("high", connection=runtime.redis)], connection=runtime.redis, name=name)
    worker.hostname = hostname
    worker.register_birth()
    runtime.redis.hset(worker.key, "last_heartbeat", utcformat(now() - timedelta(seconds=silent_for)))
    if busy_with is None:
        worker.set_state("idle")
        return worker
    job = Queue("high", connection=runtime.redis).enqueue("builtins.print", job_id=busy_with)
    worker.prepare_execution(job)  # what RQ does when it starts a job: the worker's current execution
    worker.set_state("busy")
    runtime.redis.hset(worker.key, "last_heartbeat", utcformat(now() - timedelta(seconds=silent_for)))
    return worker


def test_dead_workers_stop_counting_although_rq_still_lists_them(client, runtime) -> None:
    from jobs.lease import lease_key

    grace = runtime.settings.stale_job_grace
    registered_worker(runtime, "w-busy-leased", "host-a", busy_with="job-live", silent_for=grace * 10)
    runtime.redis.set(lease_key("job-live"), 1, ex=grace)  # its lease keeper still refreshes: alive
    registered_worker(runtime, "w-busy-dead", "host-b", busy_with="job-orphan", silent_for=grace + 1)
    registered_worker(runtime, "w-busy-starting", "host-b", busy_with="job-new", silent_for=0)  # lease comes next
    registered_worker(runtime, "w-idle", "host-a", silent_for=1)
    registered_worker(runtime, "w-idle-dead", "host-b", silent_for=40)  # missed two idle heartbeats

    body = stats(client)

    assert len(runtime.redis.smembers("rq:workers")) == 5  # RQ keeps every one for minutes
    assert body["workers"] == {"total": 3, "busy": 2, "idle": 1, "by_host": {
        "host-a": {"total": 2, "busy": 1, "idle": 1}, "host-b": {"total": 1, "busy": 1, "idle": 0}}}
    samples = metrics(client)
    assert samples["pdfjobs_workers{state=busy}"] == 2 and samples["pdfjobs_host_workers{host=host-b,state=idle}"] == 0


def test_no_workers_alert_when_the_last_worker_is_dead_but_still_registered(client, runtime) -> None:
    registered_worker(runtime, "w-gone", "host-a", silent_for=40)

    body = stats(client)

    assert body["workers"]["total"] == 0 and "no_workers" in alert_names(body)


def test_stats_and_alerts_change_as_jobs_fail(client, runtime) -> None:
    submit(client, "ok")
    run_jobs(runtime)
    before = stats(client)
    assert before["last_hour"]["completed"] == 1 and before["last_hour"]["failure_rate"] == 0.0
    assert before["last_hour"]["avg_processing_seconds"] > 0 and before["last_hour"]["p95_processing_seconds"] > 0
    assert "failure_rate" not in alert_names(before)
    fail_one(client, runtime, "bad")
    after = stats(client)
    assert after["last_hour"]["failed"] == 1 and after["last_hour"]["failure_rate"] == 0.5
    (alert,) = [alert for alert in after["alerts"] if alert["name"] == "failure_rate"]
    assert alert["value"] == 0.5 and alert["threshold"] == 0.05


def test_stats_alert_thresholds_come_from_settings(client, runtime) -> None:
    runtime.settings = runtime.settings.with_changes(alert_queue_length=2, alert_avg_processing_seconds=0.001)
    submit(client, "done")
    run_jobs(runtime)
    for index in range(3):
        submit(client, f"q{index}")
    names = alert_names(stats(client))
    assert {"queue_length", "avg_processing_time"} <= names


def unreachable_redis():
    """A client of a Redis that is not there, failing at once (no retries)."""
    import redis as redis_lib
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis_lib.Redis(unix_socket_path="/nonexistent/redis.sock", socket_timeout=0.2, retry=Retry(NoBackoff(), 0))


def test_stats_answer_with_an_alert_when_redis_is_down(client, runtime) -> None:
    runtime.redis = unreachable_redis()
    body = stats(client)
    assert body["queues"] is None and "redis_unavailable" in alert_names(body)


def metrics(client) -> dict[str, float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.data.decode()):
        for sample in family.samples:
            labels = ",".join(f"{key}={value}" for key, value in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_metrics_count_jobs_by_outcome_product_and_priority(client, runtime) -> None:
    submit(client, "ok", callback="http://127.0.0.1:9/hook")
    run_jobs(runtime)
    fail_one(client, runtime, "bad")
    cancelled = submit(client, "gone", priority="high")
    client.post(f"/api/jobs/{cancelled}/cancel", headers=auth())
    submit(client, "waiting", priority="low")
    values = metrics(client)
    labels = "priority=normal,product=minatBakatUmum"
    assert values[f"pdfjobs_jobs_submitted_total{{{labels}}}"] == 2
    assert values["pdfjobs_jobs_submitted_total{priority=high,product=minatBakatUmum}"] == 1
    assert values[f"pdfjobs_jobs_completed_total{{{labels}}}"] == 1
    assert values[f"pdfjobs_jobs_failed_total{{{labels}}}"] == 1
    assert values["pdfjobs_jobs_cancelled_total{priority=high,product=minatBakatUmum}"] == 1
    assert values["pdfjobs_jobs_active{priority=low,product=minatBakatUmum,status=queued}"] == 1
    assert values["pdfjobs_processing_seconds_count{product=minatBakatUmum}"] == 1
    assert values["pdfjobs_processing_seconds_bucket{le=+Inf,product=minatBakatUmum}"] == 1
    assert values["pdfjobs_processing_seconds_sum{product=minatBakatUmum}"] > 0
    assert values["pdfjobs_queue_length{queue=low}"] == 1 and values["pdfjobs_queue_length{queue=normal}"] == 0
    assert values["pdfjobs_workers{state=busy}"] == 0
    assert values["pdfjobs_webhook_deliveries{status=pending}"] == 1
    assert values["pdfjobs_queue_length{queue=webhooks}"] == 1  # its id waits on the sender's list
    assert values["pdfjobs_redis_up{}"] == 1 and values["pdfjobs_sql_up{}"] == 1


def test_metrics_report_redis_down_without_failing(client, runtime) -> None:
    submit(client, "x")
    runtime.redis = unreachable_redis()
    values = metrics(client)
    assert values["pdfjobs_redis_up{}"] == 0
    assert values["pdfjobs_jobs_submitted_total{priority=normal,product=minatBakatUmum}"] == 1
