"""Issue 17's two many-host figures (`make bench` runs both; `python -m bench.ha_bench busy|ceiling` alone).

- Busy workers (item 9): submit latency at fixed rates while the PDF workers on the same cores are
  saturated (a deep queue of real renders), beside the figure with the workers stopped. WORKER_NICE
  (default 10) is what lets the API keep its latency.
- Coordination ceiling (item 10): jobs/s through API + SQL + Redis + webhook when rendering costs
  nothing (BENCH_NULL_RENDER's benchNull product), on SQLite and on PostgreSQL, with the CPU each
  program spends per job: how many worker hosts one API, Redis and SQL server can feed.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from bench.bare_rq import NULL_FUNCTION, SIMPLE_WORKER, BareResult, run_bare_rq
from bench.fill import fill_queue
from bench.ha_report import SPARE_CORE_LABEL, busy_lines, ceiling_lines
from bench.loadgen import Target
from bench.receiver import WebhookReceiver
from bench.service_bench import CLIENT_NAME, E2EResult, run_e2e, service_env, target_for
from bench.submit_bench import RateRow, queued, run_rates
from jobs.runtime import build_runtime
from ops.harness import RunningService
from ops.system_postgres import postgres_url
from render.bench_null import PRODUCT_ID

CEILING_WORKERS_PER_CORE = 2  # a null job waits on SQL and Redis most of its time: more workers than cores


def ceiling_workers(cores: int) -> int:
    """PDF workers of the coordination-ceiling services (and bare RQ's workers beside them)."""
    return cores * CEILING_WORKERS_PER_CORE


@dataclass
class CeilingRow:
    """Null-render jobs through the whole service on one SQL database."""

    database: str
    workers: int
    result: E2EResult

    def cpu_ms_per_job(self) -> dict[str, float]:
        """CPU milliseconds per completed job, by program (the load generator's too)."""
        done = max(self.result.completed, 1)
        return {name: 1000 * seconds / done for name, seconds in sorted(self.result.cpu.items())}


WARM_UP_RATE, WARM_UP_SECONDS = 50, 2.0
# The PDF workers' CPU priority in the busy-worker steps, by label: the default first, then niceness alone.
WORKER_PRIORITIES = {
    "WORKER_SCHED_IDLE=true": {"WORKER_SCHED_IDLE": "true", "WORKER_NICE": "10"},
    "WORKER_NICE=10": {"WORKER_SCHED_IDLE": "false", "WORKER_NICE": "10"},
    "WORKER_NICE=0": {"WORKER_SCHED_IDLE": "false", "WORKER_NICE": "0"},
}
DEFAULT_PRIORITY = next(iter(WORKER_PRIORITIES))


def run_busy_rates(work_dir: Path, secret: str, *, cores: int, rates: list[int], seconds: float,
                   processes: int, threads: int, callback_url: str, priority: str = DEFAULT_PRIORITY,
                   database_url: str | None = None, workers: int | None = None) -> tuple[list[RateRow], int]:
    """Submit latency at `rates` while `workers` (default: `cores`) PDF workers at `priority` (WORKER_PRIORITIES)
    render a deep queue (on `database_url`, SQLite when None) and their webhooks go to `callback_url` (a
    receiver that answers, as n8n does: an unreachable one would add a wave of retries every second that no
    deployment runs in for long); returns the rows and the queue length left at the end (> 0: the workers
    were busy throughout).

    A first step at WARM_UP_RATE req/s, not reported, opens the load generator's connections and warms the
    API's per-process caches, as the idle-worker figure's 200 req/s step comes after its 50 and 100 req/s steps."""
    workers = workers or cores
    renders = int(sum(rates) * seconds) + 100 * cores * int(seconds + 5)  # more than the workers can finish
    extra = WORKER_PRIORITIES[priority] | ({"DATABASE_URL": database_url} if database_url else {})
    env = service_env(secret, workers=workers, max_queue=renders * 4, extra=extra)
    # Short folder names: supervisord's and Redis's Unix socket paths must stay under 108 bytes.
    with RunningService(work_dir / f"busy-{list(WORKER_PRIORITIES).index(priority)}", env) as service:
        service.ctl("stop", "pdf_worker:*")
        target = target_for(service, callback_url)
        rt = build_runtime(service.settings)
        try:
            fill_queue(rt, renders, client_name=CLIENT_NAME, body=target.body, tag="busy")
        finally:
            rt.engine.dispose()
            rt.redis.close()
        service.ctl("start", "pdf_worker:*")
        run_rates(service, target, rates=[WARM_UP_RATE], seconds=WARM_UP_SECONDS, processes=processes, threads=threads)
        rows = run_rates(service, target, rates=rates, seconds=seconds, processes=processes, threads=threads)
        fewer = f", {workers} {SPARE_CORE_LABEL} {cores} cores" if workers != cores else ""
        for row in rows:
            row.label = f"{row.label}, workers saturated{', PostgreSQL' if database_url else ''}, {priority}{fewer}"
        return rows, queued(service)


def run_ceiling(work_dir: Path, secret: str, receiver: WebhookReceiver, *, database: str, cores: int, jobs: int,
                clients: int, timeout: float) -> CeilingRow:
    """`jobs` benchNull jobs submitted by `clients` HTTP clients; time until every webhook arrived."""
    workers = ceiling_workers(cores)
    server = postgres_url() if database == "postgresql" else nullcontext(None)
    with server as database_url:
        extra = {"BENCH_NULL_RENDER": "1"}
        if database_url:
            extra["DATABASE_URL"] = database_url
        env = service_env(secret, workers=workers, max_queue=jobs * 2, extra=extra)
        with RunningService(work_dir / f"null-{database}", env) as service:
            target = target_for(service, receiver.url)
            target = Target(target.port, target.api_key, target.body | {"productId": PRODUCT_ID})
            result = run_e2e(service, target, receiver, jobs=jobs, tag=f"ceiling-{database}", timeout=timeout,
                             clients=clients)
    return CeilingRow(database, workers, result)


def run_bare_ceiling(work_dir: Path, *, cores: int, jobs: int, timeout: float) -> BareResult:
    """RQ alone under the ceiling's load: `jobs` no-op jobs enqueued one by one on as many SimpleWorker
    processes as the ceiling's PDF workers; the bound that no service built on RQ's stock worker passes."""
    return run_bare_rq(work_dir, worker_class=SIMPLE_WORKER, workers=ceiling_workers(cores), jobs=jobs,
                       timeout=timeout, job_function=NULL_FUNCTION)


def main(argv: list[str] | None = None) -> int:
    """Run one section alone and print its figures (the full report comes from `make bench`)."""
    import argparse
    import shutil
    import tempfile

    from bench import machine
    from bench.service_bench import new_secret

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=["busy", "ceiling"])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite",
                        help="busy: the service's database (a local PostgreSQL server, ops/system_postgres.py)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0],
                        help="busy: PDF worker counts, each measured in turn (0: one per core)")
    parser.add_argument("--priority", choices=list(WORKER_PRIORITIES), nargs="+", default=list(WORKER_PRIORITIES),
                        help="busy: the workers' CPU priorities, each measured in turn")
    parser.add_argument("--pairs", type=int, default=1, help="busy: rounds of every worker count and priority")
    args = parser.parse_args(argv)
    work_dir, secret, cores = Path(tempfile.mkdtemp(prefix="pdfjobs-bench-")), new_secret(), machine.cores()
    ticks = machine.cpu_ticks()
    receiver = WebhookReceiver(secret).start()
    try:
        if args.section == "busy":
            rows, left = [], 0
            turns = [(workers, priority) for _ in range(args.pairs) for workers in args.workers
                     for priority in args.priority]
            for number, (workers, priority) in enumerate(turns):
                # a new PostgreSQL database each time: the fills reuse their codes
                server = postgres_url() if args.database == "postgresql" else nullcontext(None)
                with server as database_url:
                    more, left = run_busy_rates(work_dir / str(number), secret, cores=cores, rates=[200],
                                                seconds=args.seconds, processes=2, threads=16,
                                                callback_url=receiver.url, priority=priority,
                                                database_url=database_url, workers=workers or cores)
                rows += more
            print("\n".join(busy_lines([], rows, left)))
        else:
            ceiling = [run_ceiling(work_dir, secret, receiver, database=database, cores=cores, jobs=args.jobs,
                                   clients=16, timeout=300) for database in ("sqlite", "postgresql")]
            bare = run_bare_ceiling(work_dir, cores=cores, jobs=args.jobs, timeout=300)
            print("\n".join(ceiling_lines(ceiling, bare)))
    finally:
        receiver.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    print(f"- steal during the run: {machine.steal_percent(machine.steal_share(ticks, machine.cpu_ticks()))} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
