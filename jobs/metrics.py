"""Prometheus metrics computed from shared state at scrape time.

Every number comes from SQL (the record of truth: jobs by state, product and priority; processing
times; webhook deliveries) or Redis (queue lengths, the worker registry) when Prometheus scrapes. So
any API process answers the same, however many gunicorn processes and workers run, with no
multiprocess files and nothing lost when a process restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from jobs.runtime import Runtime
from jobs.stats import redis_side
from store import stats as stats_store
from store.models import ACTIVE_STATES, CANCELLED, COMPLETED, FAILED

log = logging.getLogger(__name__)

# Processing-time buckets, seconds.
BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_FINAL_COUNTERS = {COMPLETED: "completed", FAILED: "failed", CANCELLED: "cancelled"}


class JobMetricsCollector(Collector):
    """Collects pdfjobs_* metrics on every scrape."""

    def __init__(self, rt: Runtime):
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family; a dependency that does not answer shows as *_up 0."""
        yield from _with_up_gauge("sql", "SQL", self._sql_metrics, SQLAlchemyError)
        yield from _with_up_gauge("redis", "Redis", self._redis_metrics, RedisError)

    def _sql_metrics(self) -> Iterator[Metric]:
        with self.rt.session() as session:
            by_status = stats_store.jobs_by_status(session)
            histograms = stats_store.processing_histograms(session, [b * 1000 for b in BUCKETS])
            deliveries = stats_store.deliveries_by_status(session)
            attempts = stats_store.attempts_by_outcome(session)
        labels = ["product", "priority"]
        submitted = CounterMetricFamily("pdfjobs_jobs_submitted", "Jobs accepted.", labels=labels)
        ended = {
            status: CounterMetricFamily(f"pdfjobs_jobs_{name}", f"Jobs that ended {name}.", labels=labels)
            for status, name in _FINAL_COUNTERS.items()
        }
        active = GaugeMetricFamily("pdfjobs_jobs_active", "Jobs queued, scheduled or processing now.",
                                   labels=["status", *labels])
        totals: dict[tuple[str, str], int] = {}
        for status, product, priority, count in by_status:
            totals[(product, priority)] = totals.get((product, priority), 0) + count
            if status in ended:
                ended[status].add_metric([product, priority], count)
            elif status in ACTIVE_STATES:
                active.add_metric([status, product, priority], count)
        for (product, priority), count in sorted(totals.items()):
            submitted.add_metric([product, priority], count)
        yield submitted
        yield from ended.values()
        yield active
        yield _histogram(histograms)
        yield _by_label("pdfjobs_webhook_deliveries", "Webhook deliveries by state.", "status", deliveries, gauge=True)
        yield _by_label("pdfjobs_webhook_attempts", "Webhook HTTP attempts by outcome.", "outcome", attempts)

    def _redis_metrics(self) -> Iterator[Metric]:
        side = redis_side(self.rt)
        queues = {**side["queues"], "webhooks": side["webhook_queue"]}
        yield _by_label("pdfjobs_queue_length", "Jobs waiting in each RQ queue; webhooks: delivery ids waiting "
                        "on the webhook sender's list.", "queue", queues, gauge=True)
        yield GaugeMetricFamily("pdfjobs_retry_waiting", "Jobs waiting for a delayed retry.",
                                value=side["retry_waiting"])
        workers = {"busy": side["workers"]["busy"], "idle": side["workers"]["idle"]}
        yield _by_label("pdfjobs_workers", "Live PDF workers, by state (dead ones left in RQ's registry are not "
                        "counted).", "state", workers, gauge=True)
        per_host = GaugeMetricFamily("pdfjobs_host_workers", "Live PDF workers per host, by state.",
                                     labels=["host", "state"])
        for host, counts in side["workers"]["by_host"].items():
            for state in ("busy", "idle"):
                per_host.add_metric([host, state], counts[state])
        yield per_host


def _histogram(histograms: list[stats_store.Histogram]) -> HistogramMetricFamily:
    family = HistogramMetricFamily("pdfjobs_processing_seconds", "Processing time of completed jobs.",
                                   labels=["product"])
    for item in histograms:
        buckets = [(_bound(bound_ms / 1000), count) for bound_ms, count in item.buckets]
        buckets.append(("+Inf", item.count))
        family.add_metric([item.product_id], buckets, item.sum_ms / 1000)
    return family


def _bound(seconds: float) -> str:
    return repr(float(seconds))


def _by_label(name: str, doc: str, label: str, values: dict[str, int], *, gauge: bool = False) -> Metric:
    family: Metric = (GaugeMetricFamily if gauge else CounterMetricFamily)(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)  # type: ignore[attr-defined]
    return family


def _with_up_gauge(
    name: str, title: str, metrics: Callable[[], Iterator[Metric]], error: type[Exception]
) -> Iterator[Metric]:
    """The metrics of one dependency, then pdfjobs_<name>_up: 1, or 0 (logged) when it raised `error`."""
    try:
        yield from metrics()
        up = 1
    except error as exc:
        log.warning("event=metrics_%s_unavailable reason=%r", name, str(exc))
        up = 0
    yield GaugeMetricFamily(f"pdfjobs_{name}_up", f"Whether {title} answered this scrape.", value=up)
