"""`python -m bench.ab --a REV_OR_DIR --b REV_OR_DIR`: two versions of the service end to end, side by side.

Both services run for the whole bench, each from its own checkout with its own DATA_DIR, port and
embedded Redis; one signed-webhook receiver serves both. Rounds alternate between the sides in pairs
whose order alternates too (AB, BA, AB ...), so the machine's drift hits both alike, and each pair of
adjacent rounds gives one B/A ratio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import machine
from bench.ab_report import AbResults, Round, render
from bench.ab_side import ServiceSide, checkout
from bench.loadgen import Target, run_load
from bench.proctree import cpu_used
from bench.receiver import WebhookReceiver
from bench.service_bench import API_KEY, SAMPLE, new_secret, service_env

CLIENTS = 4  # HTTP clients submitting at once
LOOPBACK = {"CALLBACK_ALLOWED_HOSTS": "127.0.0.1", "LOOPBACK_ONLY": "true"}


@dataclass(frozen=True)
class AbConfig:
    """What to compare and how much: sides A and B, rounds per side, jobs per round."""

    a: str
    b: str
    rounds: int = 10
    jobs: int = 300
    workers: int = 2
    env_a: dict[str, str] = field(default_factory=dict)
    env_b: dict[str, str] = field(default_factory=dict)
    warmup: int = 4
    timeout: float = 300.0

    def plan(self) -> str:
        """How the run was set up, in one line."""
        return (f"{self.rounds} round(s) per side of {self.jobs} jobs, pairs in alternating order (AB, BA ...), "
                f"WORKERS={self.workers}, {CLIENTS} HTTP clients, {self.warmup} warm-up jobs per side after its "
                f"start, round timeout {self.timeout:.0f} s")


def run_round(side: ServiceSide, receiver: WebhookReceiver, *, jobs: int, tag: str, timeout: float) -> Round:
    """Submit JOBS jobs to SIDE with the HTTP clients and wait (at most TIMEOUT s) for their signed webhooks."""
    side.check_running()
    body = json.loads(SAMPLE.read_text()) | {"callback": receiver.url}
    target = Target(side.port, API_KEY, body)
    deadline = time.monotonic() + timeout
    before, ticks = side.cpu_by_program(), machine.cpu_ticks()
    load = run_load(target, tag=tag, processes=1, threads=CLIENTS, max_requests=jobs, duration=timeout,
                    keep_bodies=True)
    ids = {json.loads(body)["job_id"] for body in load.bodies if body.startswith(b"{") and b"job_id" in body}
    receiver.wait_for(ids, max(1.0, deadline - time.monotonic()))
    arrived = [receiver.arrivals[job_id] for job_id in ids if job_id in receiver.arrivals]
    steal = machine.steal_share(ticks, machine.cpu_ticks())
    cpu = cpu_used(before, side.cpu_by_program())
    end = max(arrived) if arrived and len(arrived) == len(ids) else time.time()
    return Round(side.name, jobs, len(ids), len(arrived), end - load.wall_started, cpu, load.cpu_seconds, steal)


def wait_workers(side: ServiceSide, count: int, timeout: float = 60) -> None:
    """Block until COUNT PDF workers registered (GET /api/queue/stats), or TIMEOUT s passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            workers = side.get_json("/api/queue/stats", API_KEY).get("workers") or {}
        except (OSError, ValueError):  # not up yet, or an older revision's answer
            workers = {}
        if int(workers.get("total", 0)) >= count:
            return
        time.sleep(0.5)


def start_side(side: ServiceSide, receiver: WebhookReceiver, config: AbConfig) -> None:
    """Start SIDE and run its untimed warm-up; raise when it delivers no complete warm-up."""
    side.start()
    wait_workers(side, config.workers)
    warm = run_round(side, receiver, jobs=config.warmup, tag=f"ab-{side.name}-warm", timeout=config.timeout)
    if not warm.complete:
        raise RuntimeError(f"side {side.name}: warm-up {warm.webhooks}/{warm.jobs} webhooks, {warm.accepted} "
                           f"accepted in {config.timeout:.0f} s\n{side.log_tail()}")


def run_ab(config: AbConfig, work_dir: Path) -> AbResults:
    """Start both sides, run the rounds, stop everything (also on an error or Ctrl-C)."""
    began = time.monotonic()
    results = AbResults({}, config.plan(), datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), machine.describe())
    secret = new_secret()
    with interruptible() as shield, ExitStack() as stack:
        try:
            receiver = WebhookReceiver(secret).start()
            stack.callback(receiver.stop)
            sides = {}
            for name, spec, extra in (("A", config.a, config.env_a), ("B", config.b, config.env_b)):
                source = stack.enter_context(checkout(spec, work_dir, name.lower()))
                env = service_env(secret, workers=config.workers, max_queue=max(1000, 2 * config.jobs),
                                  extra=LOOPBACK | extra)
                sides[name] = side = ServiceSide(name, source, work_dir, env)
                stack.callback(side.stop)
                start_side(side, receiver, config)
                results.sides[name] = source.describe() + (f", env {extra}" if extra else "")
            run_rounds(config, sides, receiver, results)
        finally:
            shield()  # what follows is bounded; a second Ctrl-C must not leave services or worktrees behind
    results.seconds = time.monotonic() - began
    return results


def run_rounds(config: AbConfig, sides: dict[str, ServiceSide], receiver: WebhookReceiver,
               results: AbResults) -> None:
    """config.rounds pairs of rounds, AB then BA then AB ..."""
    for pair in range(config.rounds):
        for name in ("AB" if pair % 2 == 0 else "BA"):
            number = len(results.rounds) + 1
            row = run_round(sides[name], receiver, jobs=config.jobs, tag=f"ab-{name}-{number}",
                            timeout=config.timeout)
            results.rounds.append(row)
            print(f"round {number}/{2 * config.rounds} {name}: {row.jobs_per_second:.2f} jobs/s, "
                  f"{row.webhooks}/{row.jobs} webhooks, CPU {row.cpu_per_job() * 1000:.1f} ms/job",
                  file=sys.stderr, flush=True)


@contextmanager
def interruptible() -> Iterator[Callable[[], None]]:
    """SIGINT (Ctrl-C) and SIGTERM end the run with KeyboardInterrupt; yields a function that ignores both
    until the block ends (the handlers are restored then). Signal handlers belong to the main thread:
    elsewhere, no change."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    # SIGINT too: a shell starts a background command with it ignored, and Python keeps it so
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)

    def shield() -> None:
        for number in previous:
            signal.signal(number, signal.SIG_IGN)

    try:
        yield shield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def key_value(text: str) -> tuple[str, str]:
    """K=V from the command line."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"expected K=V, got {text!r}")
    return key, value


def parse_args(argv: list[str] | None) -> tuple[AbConfig, Path | None]:
    """The configuration and --out from the command line."""
    parser = argparse.ArgumentParser(description="A/B bench: two versions of the service, rounds alternated")
    parser.add_argument("--a", required=True, help="a checkout directory or a git revision of this repository")
    parser.add_argument("--b", required=True, help="a checkout directory or a git revision of this repository")
    parser.add_argument("--rounds", type=int, default=10, help="rounds per side")
    parser.add_argument("--jobs", type=int, default=300, help="jobs per round")
    parser.add_argument("--workers", type=int, default=2, help="PDF worker processes per side (WORKERS)")
    parser.add_argument("--env-a", type=key_value, nargs="+", action="extend", default=[], metavar="K=V")
    parser.add_argument("--env-b", type=key_value, nargs="+", action="extend", default=[], metavar="K=V")
    parser.add_argument("--warmup", type=int, default=4, help="untimed jobs per side after its start")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a round may take")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown report here")
    args = parser.parse_args(argv)
    for name in ("rounds", "jobs", "workers", "warmup", "timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive, got {getattr(args, name)}")
    config = AbConfig(args.a, args.b, args.rounds, args.jobs, args.workers, dict(args.env_a), dict(args.env_b),
                      args.warmup, args.timeout)
    return config, args.out


def main(argv: list[str] | None = None) -> int:
    """Run the A/B bench, print the report and write it to --out."""
    config, out = parse_args(argv)
    work_dir = Path(tempfile.mkdtemp(prefix="pdfjobs-ab-"))
    try:
        results = run_ab(config, work_dir)
    except KeyboardInterrupt:
        print("interrupted: both sides stopped, temporary worktrees removed", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    report = render(results)
    print(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
