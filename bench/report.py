"""The bench's markdown table: printed, and written to bench/results/<date>-<mode>.md."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench.ha_report import SPARE_CORE_LABEL, busy_lines, ceiling_lines
from bench.machine import steal_percent
from bench.stats import ms, p50_p95_p99, percentile
from bench.submit_bench import REFERENCE_BLOCK

if TYPE_CHECKING:
    from bench.bare_rq import BareResult
    from bench.batch_bench import BatchResult
    from bench.ha_bench import CeilingRow
    from bench.service_bench import E2EResult, IdleLatency
    from bench.submit_bench import CostRow, Growth, RateRow

# The row of the second service measured in turns with the row above it (bench.submit_bench.measure_paired).
REFERENCE_LABEL = (f"0, reference: a second service, measured in turns with the row above (its queue emptied "
                   f"every {REFERENCE_BLOCK} pairs)")


@dataclass
class Results:
    """Everything one bench run measured."""

    mode: str
    date: str
    machine: list[tuple[str, str]]
    cores: int
    render_samples: list[float] = field(default_factory=list)
    legacy_render_samples: list[float] = field(default_factory=list)  # the previous (reportlab) renderer
    bare: list[BareResult] = field(default_factory=list)
    e2e_runs: list[E2EResult] = field(default_factory=list)
    idle: IdleLatency | None = None
    rates: list[RateRow] = field(default_factory=list)
    empty_cost: CostRow | None = None
    growth: Growth | None = None
    rss: list[tuple[str, int]] = field(default_factory=list)
    busy_rates: list[RateRow] = field(default_factory=list)
    busy_queue_left: int = 0
    ceiling_rows: list[CeilingRow] = field(default_factory=list)
    ceiling_bare: BareResult | None = None  # bare RQ's no-op jobs under the ceiling's load
    batch: BatchResult | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def render_cpu(self) -> float:
        """CPU seconds per report: the fastest of the samples taken through the run (the highest ceiling)."""
        return min(self.render_samples, default=0.0)

    @property
    def ceiling(self) -> float:
        """Render-bound ceiling in jobs/s: cores / render CPU time."""
        return self.cores / self.render_cpu if self.render_cpu else 0.0

    @property
    def e2e(self) -> E2EResult | None:
        """The best service e2e round."""
        return max(self.e2e_runs, key=lambda run: run.jobs_per_second, default=None)

    def paired_rounds(self) -> list[tuple[int, float | None, float | None, float | None]]:
        """Per service round: (round, ratio vs the rq-simple round run just before it, share of the
        ceiling from the render sample taken just before it, that rq-simple round's CPU per job over
        the service round's: the ratio CPU alone allows). The machine's speed drifts by tens of
        percent within a run; a round and its neighbour see the same machine, best-of-rounds may not."""
        simple = {b.round_no: b for b in self.bare if b.worker_class.endswith(".SimpleWorker")}
        rows = []
        for number, run in enumerate(self.e2e_runs, 1):
            bare = simple.get(number)
            sample = self.render_samples[number] if number < len(self.render_samples) else None
            cpu = bare.cpu_per_job / run.cpu_per_job if bare and bare.cpu_per_job and run.cpu_per_job else None
            rows.append((number, run.jobs_per_second / bare.jobs_per_second if bare else None,
                         run.jobs_per_second * sample / self.cores if sample else None, cpu))
        return rows

    def paired_median(self, column: int) -> float | None:
        """The median over the rounds of one `paired_rounds` column (None when no round has it)."""
        values = [row[column] for row in self.paired_rounds() if row[column] is not None]
        return statistics.median(values) if values else None

    def bare_rate(self, worker_class: str) -> float:
        """jobs/s of the best bare-RQ round with this worker class (0 when absent)."""
        return max((b.jobs_per_second for b in self.bare if b.worker_class.endswith(worker_class)), default=0.0)


def render(results: Results) -> str:
    """The whole report as markdown."""
    lines = [f"# make bench: {results.mode} run, {results.date}", ""]
    lines += ["| machine | |", "|---|---|", *[f"| {k} | {v} |" for k, v in results.machine], ""]
    lines += _throughput(results) + _submit(results) + _batch(results) + _idle(results) + _growth(results)
    lines += _memory(results)
    lines += busy_lines(results.rates, results.busy_rates, results.busy_queue_left)
    lines += ceiling_lines(results.ceiling_rows, results.ceiling_bare)
    lines += _targets(results)
    lines += ["## Notes", "", *[f"- {note}" for note in results.notes]]
    lines += [f"- bench wall time: {results.seconds:.0f} s", ""]
    return "\n".join(lines)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def _throughput(r: Results) -> list[str]:
    lines = ["## End-to-end throughput", "",
             "| run | processes | jobs | done | seconds | jobs/s | % of ceiling | CPU ms/job | steal % |",
             "|---|---|---|---|---|---|---|---|---|",
             f"| render-bound ceiling ({ms(r.render_cpu)} ms CPU/report, fastest of "
             f"{' / '.join(ms(sample) for sample in r.render_samples)}) | {r.cores} | | | | {r.ceiling:.1f} | 100 | "
             f"{ms(r.render_cpu)} | |"]
    if r.legacy_render_samples:
        legacy = min(r.legacy_render_samples)
        lines.append(f"| previous renderer, same run (reportlab, base-14 fonts not embedded: "
                     f"{ms(legacy)} ms CPU/report, fastest of {' / '.join(ms(x) for x in r.legacy_render_samples)}; "
                     f"Typst template: {_ratio(legacy, r.render_cpu)}x faster) | {r.cores} | | | | "
                     f"{r.cores / legacy:.1f} | | {ms(legacy)} | |")
    for bare in r.bare:
        name = "rq-default (forking Worker)" if bare.worker_class.endswith(".Worker") else "rq-simple (SimpleWorker)"
        lines.append(f"| bare {name} #{bare.round_no} | {bare.workers} | {bare.jobs} | {bare.finished} | "
                     f"{bare.seconds:.2f} | {bare.jobs_per_second:.1f} | {_pct(bare.jobs_per_second, r.ceiling)} | "
                     f"{ms(bare.cpu_per_job)} | {steal_percent(bare.steal)} |")
    for number, run in enumerate(r.e2e_runs, 1):
        lines.append(f"| service #{number} (HTTP -> RQ -> render -> store -> SQL -> {run.end_marker}) | {r.cores} | "
                     f"{run.jobs} | {run.completed} | {run.seconds:.2f} | {run.jobs_per_second:.1f} | "
                     f"{_pct(run.jobs_per_second, r.ceiling)} | {ms(run.cpu_per_job)} | {steal_percent(run.steal)} |")
    e2e = r.e2e
    if e2e is not None:
        lines += ["", "```",
                  f"ratio vs rq-default: {_ratio(e2e.jobs_per_second, r.bare_rate('.Worker'))}",
                  f"ratio vs rq-simple: {_num(r.paired_median(1))} (median of the rounds, each against the "
                  f"rq-simple round just before it: {_paired(r, 1)}; best service round / best rq-simple round: "
                  f"{_ratio(e2e.jobs_per_second, r.bare_rate('.SimpleWorker'))})",
                  f"service % of render-bound ceiling: {_num(r.paired_median(2), pct=True)} (median of the rounds, "
                  f"each against the render sample just before it: {_paired(r, 2, pct=True)}; best round / fastest "
                  f"sample: {_pct(e2e.jobs_per_second, r.ceiling)})",
                  f"CPU per job, rq-simple / service (the ratio CPU alone allows): {_num(r.paired_median(3))} "
                  f"(median of the rounds, each against the rq-simple round just before it: {_paired(r, 3)})",
                  f"webhooks received: {e2e.webhooks}/{e2e.jobs}; submit answers: {e2e.submit_statuses}", "```", "",
                  "CPU ms per job during the e2e run, by program: " + ", ".join(
                      f"{name} {1000 * seconds / max(e2e.completed, 1):.1f}" for name, seconds in e2e.cpu.items())]
    return [*lines, ""]


def _num(value: float | None, *, pct: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.0f}" if pct else f"{value:.2f}"


def _paired(r: Results, column: int, *, pct: bool = False) -> str:
    return " / ".join(f"#{row[0]} {_num(row[column], pct=pct)}" for row in r.paired_rounds())


def _pct(value: float, whole: float) -> str:
    return f"{100 * value / whole:.0f}" if whole else "n/a"


def _submit(r: Results) -> list[str]:
    lines = ["## Submit latency (POST /api/reports/generate-async)", "",
             "| load | queued before | sent | 202 | 429/503 | other errors | accepted/s | latency p50 / p95 / p99 ms "
             "| generator late p99 ms | generator CPU |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in r.rates:
        res = row.result
        lines.append(
            f"| {row.label} | {row.queued_before} | {sum(res.statuses.values())} | {res.count(202)} | "
            f"{res.count(429, 503)} | {row.errors} | {row.accepted_per_second:.0f} | {p50_p95_p99(res.latencies)} | "
            f"{ms(percentile(res.lateness, 99)) if row.offered else '-'} | {100 * row.generator_cpu:.0f}% of a core |"
        )
    lines.append("")
    for row in r.rates:
        accepted = max(row.result.count(202), 1)
        shares = ", ".join(f"{name} {1000 * sec / accepted:.2f}" for name, sec in row.cpu.items() if sec > 0)
        lines.append(f"- CPU ms per accepted submit at {row.label}: {shares}")
    return [*lines, ""]


def _batch(r: Results) -> list[str]:
    if r.batch is None:
        return []
    b = r.batch
    lines = ["## Batch submit (POST /api/reports/generate-batch) against single submits", "",
             f"The same service, one after the other, with {b.queued_before} jobs queued before.", "",
             "| way | clients | requests | answers | jobs accepted | seconds | jobs/s | request p50 / p95 / p99 ms "
             "| CPU ms per accepted job |", "|---|---|---|---|---|---|---|---|---|"]
    for row in (b.single, b.batch):
        shares = ", ".join(f"{name} {1000 * sec / max(row.accepted, 1):.3f}" for name, sec in row.cpu.items()
                           if sec > 0)
        answers = ", ".join(f"{status}: {count}" for status, count in sorted(row.statuses.items()))
        lines.append(f"| {row.label} | {row.clients} | {row.requests} | {answers} | {row.accepted} | "
                     f"{row.seconds:.2f} | {row.jobs_per_second:.0f} | {p50_p95_p99(row.latencies)} | {shares} |")
    lines += ["", f"batch / single jobs/s: {b.ratio:.2f}", ""]
    return lines


def _idle(r: Results) -> list[str]:
    if r.idle is None:
        return []
    idle = r.idle
    return ["## Idle workers, one job at a time", "",
            "| latency | n | p50 ms | p99 ms |", "|---|---|---|---|",
            f"| pickup (SQL created_at -> started_at) | {len(idle.pickup)} | {ms(percentile(idle.pickup, 50))} | "
            f"{ms(percentile(idle.pickup, 99))} |",
            f"| created_at -> RQ enqueued_at (API commit + enqueue) | {len(idle.to_enqueued)} | "
            f"{ms(percentile(idle.to_enqueued, 50))} | {ms(percentile(idle.to_enqueued, 99))} |",
            f"| RQ enqueued_at -> RQ started_at (dequeue) | {len(idle.dequeue)} | "
            f"{ms(percentile(idle.dequeue, 50))} | {ms(percentile(idle.dequeue, 99))} |",
            f"| run (started_at -> completed_at) | {len(idle.run)} | {ms(percentile(idle.run, 50))} | "
            f"{ms(percentile(idle.run, 99))} |",
            f"| completed_at -> webhook received | {len(idle.to_webhook)} | {ms(percentile(idle.to_webhook, 50))} | "
            f"{ms(percentile(idle.to_webhook, 99))} |",
            f"| submit sent -> webhook received | {len(idle.submit_to_webhook)} | "
            f"{ms(percentile(idle.submit_to_webhook, 50))} | {ms(percentile(idle.submit_to_webhook, 99))} |", ""]


def _growth(r: Results) -> list[str]:
    rows = [(str(r.empty_cost.queued), r.empty_cost)] if r.empty_cost else []
    if r.growth:
        for row, reference in zip(r.growth.rows, r.growth.references, strict=True):
            rows += [(str(row.queued), row), (REFERENCE_LABEL, reference)]
    if not rows:
        return []
    lines = ["## Cost growth with the queue (one client, submit then status of that job)", "",
             "| queued | submit p50 / p95 / p99 ms | status p50 / p95 / p99 ms | errors | Redis forks |",
             "|---|---|---|---|---|"]
    lines += [f"| {label} | {p50_p95_p99(row.submit)} | {p50_p95_p99(row.status)} | {row.errors} | {row.redis_forks} |"
              for label, row in rows]
    return [*lines, ""]


def _p99_ratio(value: float, baseline: list[float]) -> float:
    base = percentile(baseline, 99)
    return value / base if base else float("nan")


def _memory(r: Results) -> list[str]:
    lines = ["## Memory", ""]
    if r.growth is not None and r.growth.http_jobs:
        lines.append(f"Redis used_memory per queued job: {r.growth.http_bytes_per_job:.0f} bytes "
                     f"(delta over the HTTP submit steps, {r.growth.http_jobs} jobs)")
        lines.append("")
    if r.growth is not None and r.growth.filled:
        lines.append(f"Redis used_memory per queued job: {r.growth.bytes_per_job:.0f} bytes "
                     f"(delta over the last bulk fill; {r.growth.filled} jobs filled in {r.growth.fill_seconds:.1f} s)")
        lines.append("")
    lines += ["| process | RSS MiB |", "|---|---|", *[f"| {name} | {kib / 1024:.1f} |" for name, kib in r.rss], ""]
    return lines


def _targets(r: Results) -> list[str]:
    checks = []
    if r.e2e is not None:
        rate = r.e2e.jobs_per_second
        simple, share = r.paired_median(1), r.paired_median(2)
        checks += [("e2e ratio vs rq-default >= 1.0", _ratio(rate, r.bare_rate(".Worker")),
                    r.bare_rate(".Worker") and rate / r.bare_rate(".Worker") >= 1.0),
                   ("e2e ratio vs rq-simple >= 0.8 (median of paired rounds)", _num(simple),
                    simple is not None and simple >= 0.8),
                   (">= 40 % of render-bound ceiling (median of paired rounds)", f"{_num(share, pct=True)} %",
                    share is not None and share >= 0.4)]
    if r.render_samples:
        legacy = f"; reportlab {ms(min(r.legacy_render_samples))} ms" if r.legacy_render_samples else ""
        checks.append(("render CPU per report <= 12 ms (fastest sample, the previous renderer in the same run)",
                       f"{ms(r.render_cpu)} ms{legacy}", r.render_cpu <= 0.012))
    at200 = next((row for row in r.rates if row.offered == 200), None)
    if at200 is not None:
        p99 = percentile(at200.result.latencies, 99)
        checks.append(("submit p99 < 15 ms at 200 req/s", f"{ms(p99)} ms", p99 < 0.015))
    busy200 = next((row for row in r.busy_rates if row.offered == 200), None)
    if busy200 is not None:
        p99 = percentile(busy200.result.latencies, 99)
        checks.append(("submit p99 < 15 ms at 200 req/s, workers saturated", f"{ms(p99)} ms", p99 < 0.015))
    spare = next((row for row in r.busy_rates if row.offered == 200 and SPARE_CORE_LABEL in row.label), None)
    if spare is not None:
        p99 = percentile(spare.result.latencies, 99)
        checks.append(("submit p99 < 15 ms at 200 req/s, workers saturated, a PDF worker fewer than cores",
                       f"{ms(p99)} ms", p99 < 0.015))
    bare = f" (bare RQ, no-op jobs: {r.ceiling_bare.jobs_per_second:.0f}/s)" if r.ceiling_bare else ""
    for row in r.ceiling_rows:
        checks.append((f">= 400 jobs/s coordination ceiling ({row.database})",
                       f"{row.result.jobs_per_second:.0f}/s{bare}", row.result.jobs_per_second >= 400))
    saturation = next((row for row in r.rates if not row.offered), None)
    if saturation is not None:
        checks.append((">= 800 accepted submits/s at saturation", f"{saturation.accepted_per_second:.0f}/s",
                       saturation.accepted_per_second >= 800))
    if r.idle is not None:
        pickup, hook = percentile(r.idle.pickup, 50), percentile(r.idle.to_webhook, 50)
        checks.append(("pickup p50 < 5 ms", f"{ms(pickup)} ms", pickup < 0.005))
        checks.append(("completed -> webhook p50 < 50 ms", f"{ms(hook)} ms", hook < 0.05))
    if r.batch is not None:
        rate = r.batch.batch.jobs_per_second
        checks.append((">= 5,000 jobs/s accepted through the batch endpoint", f"{rate:.0f}/s "
                       f"({r.batch.ratio:.1f}x single submits)", rate >= 5000))
    checks += _growth_checks(r)
    lines = ["## Targets", "", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {'met' if ok else 'MISSED'} |" for name, value, ok in checks]
    return [*lines, ""]


def _growth_checks(r: Results) -> list[tuple[str, str, bool]]:
    checks: list[tuple[str, str, bool]] = []
    if r.growth is None or not r.growth.rows:
        return checks
    largest, reference = r.growth.rows[-1], r.growth.references[-1]
    # Against the reference measured in turns with the largest size: the machine's speed drifts over
    # the minutes between the first empty measurement and the largest, and drift is not growth. The
    # ratio against the first one is shown beside it.
    for name in ("submit", "status"):
        grown = percentile(getattr(largest, name), 99)
        ratio = _p99_ratio(grown, getattr(reference, name))
        first = _p99_ratio(grown, getattr(r.empty_cost, name)) if r.empty_cost else None
        shown = f" (against the empty queue before the rate steps: {first:.2f}x)" if first is not None else ""
        checks.append((f"{name} p99 at {largest.queued} queued <= 1.5x empty", f"{ratio:.2f}x{shown}", ratio <= 1.5))
    per_job = r.growth.bytes_per_job if r.growth.filled else r.growth.http_bytes_per_job
    checks.append(("<= 2 KB Redis per queued job", f"{per_job:.0f} B", 0 < per_job <= 2048))
    return checks
