"""The bench report's many-host sections (issue 17): submit beside busy workers, the coordination ceiling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.machine import steal_percent
from bench.stats import p50_p95_p99

if TYPE_CHECKING:
    from bench.bare_rq import BareResult
    from bench.ha_bench import CeilingRow
    from bench.submit_bench import RateRow


SPARE_CORE_LABEL = "PDF workers on"  # in the label of a busy step with fewer PDF workers than cores (bench.ha_bench)


def busy_lines(idle: list[RateRow], busy: list[RateRow], queue_left: int) -> list[str]:
    """Submit latency with the PDF workers saturated on the same cores, beside the rows with them stopped."""
    if not busy:
        return []
    lines = ["## Submit latency while the PDF workers render (WORKER_SCHED_IDLE, WORKER_NICE)", "",
             "| load | 202 | other | accepted/s | latency p50 / p95 / p99 ms | pdf_worker CPU (cores) |",
             "|---|---|---|---|---|---|"]
    offered = {row.offered for row in busy}
    for row in [*[row for row in idle if row.offered in offered], *busy]:
        res = row.result
        workers = row.cpu.get("pdf_worker", 0.0) / res.duration
        lines.append(f"| {row.label} | {res.count(202)} | {row.errors} | {row.accepted_per_second:.0f} | "
                     f"{p50_p95_p99(res.latencies)} | {workers:.2f} |")
    lines += ["", f"- jobs still queued after the busy steps: {queue_left} (> 0: the workers never ran dry)", ""]
    return lines


def ceiling_lines(rows: list[CeilingRow], bare: BareResult | None = None) -> list[str]:
    """The coordination ceiling: null-render jobs/s and CPU ms per job by program, per database, and bare RQ's
    no-op jobs under the same load (`bare`) beside them."""
    if not rows:
        return []
    programs = sorted({name for row in rows for name in row.result.cpu})
    lines = ["## Coordination ceiling (benchNull: rendering costs nothing)", "",
             f"| database | workers | jobs | completed | webhooks | jobs/s | {' | '.join(programs)} (CPU ms/job) |",
             "|---|---|---|---|---|---|" + "---|" * len(programs)]
    for row in rows:
        res, per_job = row.result, row.cpu_ms_per_job()
        lines.append(f"| {row.database} | {row.workers} | {res.jobs} | {res.completed} | {res.webhooks} | "
                     f"{res.jobs_per_second:.0f} | " + " | ".join(f"{per_job.get(p, 0):.2f}" for p in programs) + " |")
    lines += ["", "- jobs/s: first submit to last webhook received; CPU per job: each program's CPU over "
              "the run divided by the completed jobs (bench/proctree.py)"]
    if bare is not None:
        lines.append(f"- bare RQ under the same load, no-op jobs, no HTTP, SQL or webhook ({bare.workers} SimpleWorker "
                     f"processes): {bare.finished}/{bare.jobs} jobs, **{bare.jobs_per_second:.0f} jobs/s** (first "
                     f"enqueue to last job end); CPU ms per job: rq workers + redis-server "
                     f"{1000 * bare.cpu_per_job:.2f}, the enqueuing thread {1000 * bare.enqueue_cpu_per_job:.2f}; "
                     f"steal {steal_percent(bare.steal)} %")
    return [*lines, ""]
