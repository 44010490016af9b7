"""`make bench` (`python -m bench.run`): the service against bare RQ, side by side, in one run.

`--plan quick` (`BENCH_QUICK=1 make bench`) runs the short plan (under 2 minutes); the service it
starts is configured through Settings like any other run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rq import Queue, Worker

from bench import machine
from bench.bare_rq import DEFAULT_WORKER, SIMPLE_WORKER, run_bare_rq
from bench.batch_bench import run_batch_comparison
from bench.ha_bench import (
    DEFAULT_PRIORITY,
    WORKER_PRIORITIES,
    ceiling_workers,
    run_bare_ceiling,
    run_busy_rates,
    run_ceiling,
)
from bench.legacy.minat_bakat import MinatBakatTemplate
from bench.loadgen import Target
from bench.receiver import WebhookReceiver
from bench.report import Results, render
from bench.sample_data import varied_sample
from bench.service_bench import (
    new_secret,
    rss_by_process,
    run_e2e,
    run_idle_latency,
    service_env,
    target_for,
    webhooks_available,
)
from bench.submit_bench import (
    Growth,
    Reference,
    measure_cost,
    queued,
    run_growth,
    run_rates,
    run_saturation,
    used_memory,
)
from jobs.queues import HIGH
from jobs.runtime import build_runtime
from ops.harness import RunningService
from render import Template, load_registry

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class BenchPlan:
    """Sizes of one bench run; every loop is bounded by these counts and seconds."""

    name: str
    e2e_jobs: int
    idle_jobs: int
    rates: tuple[int, ...]
    rate_seconds: float
    saturation_seconds: float
    load_processes: int
    load_threads: int
    cost_samples: int
    growth_sizes: tuple[int, ...]
    ceiling_renders: int
    timeout: float
    bare_default_jobs: int
    rounds: int
    batch_size: int = 1000  # items per batch of the batch step
    batches: int = 40  # batches sent by the batch step (back to back by `batch_clients` clients)
    batch_clients: int = 2
    batch_single_seconds: float = 5.0  # the single-submit closed loop the batches are compared with
    null_jobs: int = 3000  # benchNull jobs per database for the coordination ceiling
    busy_priorities: tuple[str, ...] = tuple(WORKER_PRIORITIES)  # the workers' CPU priorities of the busy steps
    busy_spare_core: bool = True  # one more busy step, at the default priority with a PDF worker fewer than cores
    ceiling_databases: tuple[str, ...] = ("sqlite", "postgresql")


PLANS = {
    "full": BenchPlan("full", 300, 40, (50, 100, 200, 400), 5, 8, 2, 16, 1000, (10_000, 100_000), 50, 180, 150, 5),
    "quick": BenchPlan("quick", 100, 15, (50, 100, 200), 2, 3, 2, 16, 150, (2_000, 10_000), 50, 90, 40, 1,
                       batches=12, batch_single_seconds=3.0, null_jobs=1000),
    # smoke fills to 3,000: the HTTP steps queue ~1,000 first, and a fill of a few dozen jobs can show a
    # negative Redis memory delta (allocator noise)
    "smoke": BenchPlan("smoke", 5, 2, (20,), 1, 1, 1, 4, 5, (3000,), 3, 60, 5, 1, batch_size=50, batches=4,
                       batch_single_seconds=1.0, null_jobs=20, busy_priorities=(DEFAULT_PRIORITY,),
                       busy_spare_core=False, ceiling_databases=("sqlite",)),
}


def render_cpu_seconds(renders: int, template: Template | None = None) -> float:
    """CPU seconds per minatBakatUmum render, in this process (after warming up), each render with another
    participant's data (varied_sample); the service's template unless another one (the previous renderer) is given."""
    template = template or load_registry().get("minatBakatUmum")
    for n in range(2):
        template.render(varied_sample(-1 - n), code=f"warm-{n}", job_id=f"warm-{n}")
    datas = [varied_sample(n) for n in range(renders)]  # made before the clock starts
    began = time.process_time()
    for n, data in enumerate(datas):
        template.render(data, code=f"cpu-{n}", job_id=f"cpu-{n}")
    return (time.process_time() - began) / renders


def sample_render_cpu(results: Results, renders: int) -> None:
    """One render sample of the service's template and one of the previous renderer, side by side."""
    results.render_samples.append(render_cpu_seconds(renders))
    results.legacy_render_samples.append(render_cpu_seconds(renders, MinatBakatTemplate()))


def run_bench(plan: BenchPlan, work_dir: Path) -> Results:
    """Every measurement of the plan, in one run."""
    began = time.monotonic()
    cores = machine.cores()
    results = Results(plan.name, datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), machine.describe(), cores)
    results.notes.append(f"load average (1, 5, 15 min) at start: {os.getloadavg()}")
    sample_render_cpu(results, plan.ceiling_renders)
    results.bare.append(run_bare_rq(work_dir, worker_class=DEFAULT_WORKER, workers=cores,
                                    jobs=plan.bare_default_jobs, timeout=plan.timeout * 2))
    results.bare.append(run_bare_rq(work_dir, worker_class=SIMPLE_WORKER, workers=cores, jobs=plan.e2e_jobs,
                                    timeout=plan.timeout))
    secret = new_secret()
    receiver = WebhookReceiver(secret).start()
    try:
        run_worker_phase(plan, work_dir, results, receiver, secret)
        run_submit_phase(plan, work_dir, results, secret)
        run_many_host_phase(plan, work_dir, results, receiver, secret)
    finally:
        receiver.stop()
    results.notes += notes(plan, cores)
    results.notes.append(f"load average (1, 5, 15 min) at end: {os.getloadavg()}")
    results.seconds = time.monotonic() - began
    return results


def run_worker_phase(plan: BenchPlan, work_dir: Path, results: Results, receiver: WebhookReceiver,
                     secret: str) -> None:
    """The service with idle workers: e2e throughput, then one job at a time, then RSS."""
    env = service_env(secret, workers=results.cores, max_queue=max(1000, plan.e2e_jobs * 2))
    with RunningService(work_dir / "service-workers", env) as service:
        target = target_for(service, receiver.url)
        _wait_workers(service, results.cores)
        for round_no in range(1, plan.rounds + 1):
            if round_no > 1:  # alternate with bare RQ so drift of the machine hits both alike
                results.bare.append(run_bare_rq(work_dir, worker_class=SIMPLE_WORKER, workers=results.cores,
                                                jobs=plan.e2e_jobs, timeout=plan.timeout, round_no=round_no))
            sample_render_cpu(results, plan.ceiling_renders)
            results.e2e_runs.append(run_e2e(service, target, receiver, jobs=plan.e2e_jobs, tag=f"e2e{round_no}",
                                            timeout=plan.timeout))
        results.idle = run_idle_latency(service, target, receiver, count=plan.idle_jobs)
        results.rss = rss_by_process(service)


def run_submit_phase(plan: BenchPlan, work_dir: Path, results: Results, secret: str) -> None:
    """The service with its PDF workers stopped: submit latency, saturation, cost growth, Redis memory."""
    largest = max(plan.growth_sizes) + 50_000 + plan.batch_size * plan.batches + int(5000 * plan.batch_single_seconds)
    env = service_env(secret, workers=results.cores, max_queue=largest)
    with RunningService(work_dir / "service-submit", env) as service:
        service.ctl("stop", "pdf_worker:*")
        target = target_for(service, "http://127.0.0.1:9/pdf-complete")
        results.empty_cost = measure_cost(service, target, samples=plan.cost_samples, tag="cost0")
        memory_before, queued_before = used_memory(service), queued(service)
        results.rates = run_rates(service, target, rates=list(plan.rates), seconds=plan.rate_seconds,
                                  processes=plan.load_processes, threads=plan.load_threads)
        results.rates.append(run_saturation(
            service, target, seconds=plan.saturation_seconds, processes=plan.load_processes,
            threads=plan.load_threads, max_requests=int(5000 * plan.saturation_seconds)))
        growth = Growth(http_jobs=queued(service) - queued_before)
        growth.http_bytes_per_job = (used_memory(service) - memory_before) / max(growth.http_jobs, 1)
        run_growth_phase(plan, work_dir, results, service, target, env, growth)
        results.batch = run_batch_comparison(
            service, target, size=plan.batch_size, batches=plan.batches, clients=plan.batch_clients,
            single_seconds=plan.batch_single_seconds, processes=plan.load_processes, threads=plan.load_threads,
            queued_before=queued(service))


def run_many_host_phase(plan: BenchPlan, work_dir: Path, results: Results, receiver: WebhookReceiver,
                        secret: str) -> None:
    """Submit latency beside saturated workers (at each of the plan's CPU priorities), and the coordination
    ceiling on SQLite and PostgreSQL."""
    at = [rate for rate in plan.rates if rate == 200] or plan.rates[-1:]
    for priority in plan.busy_priorities:
        rows, results.busy_queue_left = run_busy_rates(
            work_dir, secret, cores=results.cores, rates=at, seconds=plan.rate_seconds,
            processes=plan.load_processes, threads=plan.load_threads, callback_url=receiver.url, priority=priority)
        results.busy_rates += rows
    if plan.busy_spare_core and results.cores > 1:  # what an API host gains by leaving the renders a core fewer
        rows, _ = run_busy_rates(
            work_dir / "spare-core", secret, cores=results.cores, rates=at, seconds=plan.rate_seconds,
            processes=plan.load_processes, threads=plan.load_threads, callback_url=receiver.url,
            workers=results.cores - 1)
        results.busy_rates += rows
    for database in plan.ceiling_databases:
        results.ceiling_rows.append(run_ceiling(work_dir, secret, receiver, database=database, cores=results.cores,
                                                jobs=plan.null_jobs, clients=plan.load_threads,
                                                timeout=plan.timeout * 2))
    results.ceiling_bare = run_bare_ceiling(work_dir, cores=results.cores, jobs=plan.null_jobs,
                                            timeout=plan.timeout * 2)


def run_growth_phase(plan: BenchPlan, work_dir: Path, results: Results, service: RunningService, target: Target,
                     env: dict[str, str], growth: Growth) -> None:
    """Cost growth: the queue filled to each size, measured in turns with a second service (the reference)
    whose queue is kept empty."""
    with RunningService(work_dir / "service-reference", env) as reference_service:
        reference_service.ctl("stop", "pdf_worker:*")
        rt, reference_rt = build_runtime(service.settings), build_runtime(reference_service.settings)
        reference = Reference(reference_service, target_for(reference_service, target.body.get("callback")),
                              reference_rt)
        try:
            results.growth = run_growth(service, rt, target, reference, sizes=list(plan.growth_sizes),
                                        samples=plan.cost_samples, growth=growth)
        finally:
            for runtime in (rt, reference_rt):
                runtime.engine.dispose()
                runtime.redis.close()


def _wait_workers(service: RunningService, count: int, timeout: float = 30) -> None:
    client = service.redis()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Worker.count(queue=Queue(HIGH, connection=client)) < count:
        time.sleep(0.05)
    client.close()


def notes(plan: BenchPlan, cores: int) -> list[str]:
    """How the figures were taken."""
    hooks = "signed webhooks verified by the receiver" if webhooks_available() else (
        "this checkout has no webhook delivery yet (workers/webhook_sender.py): e2e ends at SQL completed_at")
    return [
        f"plan {plan.name}: e2e and rq-simple {plan.e2e_jobs} jobs, rq-default {plan.bare_default_jobs} jobs "
        f"(it is slow; jobs/s is its steady rate), {plan.rounds} round(s) of rq-simple and e2e alternated, each e2e "
        f"round compared with the rq-simple round and the render sample just before it, the median round "
        f"reported; rates {plan.rates} req/s x {plan.rate_seconds} s, "
        f"saturation {plan.saturation_seconds} s, growth sizes {plan.growth_sizes}, {plan.cost_samples} submit + "
        f"status pairs per size",
        f"service: WORKERS={cores}, defaults otherwise (API_PROCESSES, gunicorn gevent, LOG_LEVEL INFO); {hooks}",
        "bare RQ: `python -m rq.cli worker -w <class> bench` x cores on its own embedded redis-server, jobs "
        "enqueued one by one; jobs/s = jobs / (first enqueue -> last ended_at)",
        "service e2e: 4 HTTP clients submit N jobs to idle workers; jobs/s = N / (first submit -> last end)",
        "steal %: the share of the machine's CPU time the hypervisor gave to other guests during the round "
        "(/proc/stat; the e2e's window also covers its load generator's start). Renders are 30-40 % slower "
        "in a round with 20-30 % steal than in a quiet one, so a pair of rounds with unlike steal compares "
        "two machines",
        "load generator: bench/loadgen.py, raw keep-alive HTTP/1.1 sockets, threads x spawned processes; open "
        "loop keeps a fixed schedule (lateness = send time behind schedule), closed loop = clients back to back",
        "submit phase: PDF workers stopped (supervisorctl stop pdf_worker:*) so renders do not share the cores; "
        "MAX_QUEUE_SIZE raised above the largest fill; the queue grows through the phase (see 'queued before')",
        "cost growth: queue filled in bulk (SQL rows + RQ enqueue_many with the API's enqueue options)",
        f"batch: on the submit phase's service after the growth steps (its queue as filled), single submits in a "
        f"closed loop for {plan.batch_single_seconds} s, then {plan.batches} batches of {plan.batch_size} items "
        f"posted back to back by {plan.batch_clients} clients (bodies built before the clock); jobs/s = accepted "
        f"items / (first send -> last answer)",
        "busy workers: the queue filled with real renders, then the PDF workers started and the same open-loop "
        "step run beside them, in a service of its own for each of the workers' CPU priorities "
        f"({', '.join(plan.busy_priorities)}; the first is the default)"
        + (", then at the default priority with one PDF worker fewer than cores" if plan.busy_spare_core else ""),
        f"coordination ceiling: {plan.null_jobs} benchNull jobs (BENCH_NULL_RENDER: a fixed tiny PDF, no render) "
        f"per database, {ceiling_workers(cores)} PDF workers, {plan.load_threads} HTTP clients; PostgreSQL is "
        "a local server (ops/system_postgres.py) whose own CPU is not in the per-program figures; then bare RQ "
        f"under the same load: {plan.null_jobs} no-op jobs enqueued one by one on {ceiling_workers(cores)} "
        "`rq worker -w rq.worker.SimpleWorker` processes, no HTTP, SQL or webhook",
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the bench, print the table and write it to bench/results/."""
    parser = argparse.ArgumentParser(description="PDF job service benchmarks")
    parser.add_argument("--plan", choices=sorted(PLANS), default="full")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    name = args.plan
    work_dir = Path(tempfile.mkdtemp(prefix="pdfjobs-bench-"))
    try:
        results = run_bench(PLANS[name], work_dir)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(render(results))
    print(f"written to {write_report(results, args.out)}")
    return 0


def write_report(results: Results, directory: Path) -> Path:
    """Write the table to DIRECTORY/<date>-<plan>.md (-2, -3 ... for later runs that day); return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{datetime.now(UTC):%Y-%m-%d}-{results.mode}"
    path, number = directory / f"{stem}.md", 1
    while path.exists():  # a run of the same day never overwrites the figures an earlier one wrote
        number += 1
        path = directory / f"{stem}-{number}.md"
    path.write_text(render(results))
    return path


if __name__ == "__main__":
    raise SystemExit(main())
