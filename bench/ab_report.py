"""The A/B bench's figures and their markdown: rounds, adjacent pairs and the B/A ratios."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.machine import steal_percent
from bench.proctree import LAUNCHER, SUPERVISORD
from bench.stats import ms

PROGRAMS = ("api", "pdf_worker", "webhook_worker", "scheduler", "redis", SUPERVISORD, LAUNCHER)


@dataclass
class Round:
    """N jobs through one side: submitted by the HTTP clients until their signed webhooks arrived."""

    side: str
    jobs: int
    accepted: int
    webhooks: int
    seconds: float  # first submit -> last webhook (or the timeout)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of the side's processes by program
    load_cpu: float = 0.0  # the load generator's CPU seconds (not the service's)
    steal: float | None = None  # the machine's steal share during the round

    @property
    def complete(self) -> bool:
        """Every job was accepted and called back."""
        return self.jobs == self.accepted == self.webhooks

    @property
    def jobs_per_second(self) -> float:
        """Called-back jobs per second of the round."""
        return self.webhooks / self.seconds if self.seconds > 0 else 0.0

    def cpu_per_job(self, program: str | None = None) -> float:
        """CPU seconds per called-back job: one program's, or all the service's processes'."""
        used = self.cpu.get(program, 0.0) if program else sum(self.cpu.values())
        return used / self.webhooks if self.webhooks else 0.0


@dataclass
class Pair:
    """Two adjacent rounds, one per side, in the order they ran."""

    number: int
    order: str
    a: Round
    b: Round

    @property
    def complete(self) -> bool:
        """Both rounds saw all their webhooks (only such pairs enter the ratios)."""
        return self.a.complete and self.b.complete

    @property
    def speed_ratio(self) -> float:
        """B's jobs/s over A's: above 1, B is faster."""
        return self.b.jobs_per_second / self.a.jobs_per_second if self.a.jobs_per_second else float("nan")

    @property
    def cpu_ratio(self) -> float:
        """B's CPU per job over A's: below 1, B is cheaper."""
        return self.b.cpu_per_job() / self.a.cpu_per_job() if self.a.cpu_per_job() else float("nan")


@dataclass
class AbResults:
    """One A/B run: what each side was, how it ran, and its rounds in the order they ran."""

    sides: dict[str, str]
    plan: str
    started: str
    machine: list[tuple[str, str]] = field(default_factory=list)
    rounds: list[Round] = field(default_factory=list)
    seconds: float = 0.0

    def pairs(self) -> list[Pair]:
        """Rounds two at a time in run order (AB, BA, AB ...), as (A, B)."""
        found = []
        for number, index in enumerate(range(0, len(self.rounds) - 1, 2), start=1):
            first, second = self.rounds[index], self.rounds[index + 1]
            a, b = (first, second) if first.side == "A" else (second, first)
            found.append(Pair(number, first.side + second.side, a, b))
        return found

    def ratios(self) -> list[float]:
        """B/A of jobs/s for every complete pair."""
        return [pair.speed_ratio for pair in self.pairs() if pair.complete]

    def verdict(self) -> str:
        """'B/A median X (n pairs)' of jobs/s."""
        ratios = self.ratios()
        if not ratios:
            return "B/A: no complete pair of rounds"
        plural = "pair" if len(ratios) == 1 else "pairs"
        return f"B/A median {statistics.median(ratios):.3f} ({len(ratios)} {plural})"


def spread(values: list[float]) -> str:
    """'median X, min Y, max Z' of ratios."""
    if not values:
        return "n/a"
    return f"median {statistics.median(values):.3f}, min {min(values):.3f}, max {max(values):.3f}"


def programs_seen(rounds: list[Round]) -> list[str]:
    """The programs to show, the known ones first in a fixed order."""
    seen = {name for row in rounds for name in row.cpu}
    return [name for name in PROGRAMS if name in seen] + sorted(seen - set(PROGRAMS))


def rounds_table(rounds: list[Round]) -> list[str]:
    """One row per round: jobs/s, webhooks, steal, CPU ms/job in all and per program."""
    programs = programs_seen(rounds)
    lines = [
        "| # | side | jobs/s | webhooks | steal % | CPU ms/job | " + " | ".join(programs) + " | load gen ms/job |",
        "|---" * (7 + len(programs)) + "|",
    ]
    for number, row in enumerate(rounds, start=1):
        cells = [str(number), row.side, f"{row.jobs_per_second:.2f}", f"{row.webhooks}/{row.jobs}",
                 steal_percent(row.steal), ms(row.cpu_per_job())]
        cells += [ms(row.cpu_per_job(name)) for name in programs]
        cells.append(ms(row.load_cpu / row.webhooks) if row.webhooks else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def pairs_table(pairs: list[Pair]) -> list[str]:
    """One row per pair of adjacent rounds: both speeds, B/A of jobs/s and of CPU per job, both steals."""
    lines = ["| pair | order | A jobs/s | B jobs/s | B/A jobs/s | B/A CPU ms/job | steal % A / B |",
             "|---|---|---|---|---|---|---|"]
    for pair in pairs:
        note = "" if pair.complete else " (incomplete: not in the ratios)"
        lines.append(
            f"| {pair.number} | {pair.order} | {pair.a.jobs_per_second:.2f} | {pair.b.jobs_per_second:.2f} | "
            f"{pair.speed_ratio:.3f}{note} | {pair.cpu_ratio:.3f} | "
            f"{steal_percent(pair.a.steal)} / {steal_percent(pair.b.steal)} |"
        )
    return lines


def render(results: AbResults) -> str:
    """The whole report as markdown; its last line is the verdict."""
    complete = [pair for pair in results.pairs() if pair.complete]
    lines = [f"# A/B bench, {results.started}", ""]
    lines += [f"- {name}: {text}" for name, text in results.sides.items()]
    lines += [f"- {results.plan}", f"- took {results.seconds:.0f} s"]
    lines += [f"- {name}: {value}" for name, value in results.machine]
    lines += ["", "## Rounds", "", *rounds_table(results.rounds), ""]
    lines += ["## Pairs of adjacent rounds", "", *pairs_table(results.pairs()), ""]
    lines.append(f"B/A of jobs/s (above 1: B faster): {spread(results.ratios())}")
    lines.append(f"B/A of CPU ms/job (below 1: B cheaper): {spread([pair.cpu_ratio for pair in complete])}")
    lines += ["", results.verdict(), ""]
    return "\n".join(lines)
