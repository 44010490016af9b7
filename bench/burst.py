"""One client's burst against another client's submits: `python -m bench.burst [--rounds N] [--out FILE]`.

The service runs under supervisord (two gunicorn API processes, embedded Redis) with its PDF workers stopped,
so the API has the cores. Each round, client `steady` (limits it never reaches) submits at --steady-rate per
second without pause: --quiet seconds alone, then through a burst, then --quiet seconds alone again. The
burst is one client (RATE_LIMIT 600/minute, MAX_QUEUED_PER_CLIENT 100, a fresh client per round) sending
--burst submits on --connections connections: back to back (a script or an n8n loop as fast as the service
answers: RATE_LIMIT_PAUSE then slows it to about its allowed rate), or at --burst-rate per second whatever
the answers (an open loop: the rate does not drop). The steady client's latency while the burst runs is
compared with its latency in the quiet seconds around it (before and after: the machine's speed drifts, so
the baseline brackets the burst).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.loadgen import Connection, LoadResult, Target, run_load
from bench.machine import cpu_ticks, steal_percent, steal_share
from bench.sample_data import SAMPLE
from bench.stats import p50_p95_p99, percentile
from ops.harness import RunningService

STEADY_KEY = "steady-key-0123456789abcdef"
SECRET = "whsec_YmVuY2gtc2VjcmV0LTAxMjM0NTY3"


def burst_key(number: int) -> str:
    """The API key of round `number`'s burst client."""
    return f"burst{number}-key-0123456789abcdef"


def service_env(rounds: int) -> dict[str, str]:
    """A burst client per round on the defaults, and `steady` with limits it never reaches."""
    clients = [{"name": f"burst{n}", "api_key": burst_key(n), "webhook_secret": SECRET} for n in range(rounds)]
    clients.append({"name": "steady", "api_key": STEADY_KEY, "webhook_secret": SECRET,
                    "rate_limit": "100000/minute", "max_queued": 1_000_000})
    return {"API_CLIENTS": json.dumps(clients), "API_PROCESSES": "2", "RATE_LIMIT": "600/minute",
            "MAX_QUEUED_PER_CLIENT": "100", "MAX_QUEUE_SIZE": "1000000", "LOOPBACK_ONLY": "1"}


@dataclass
class Steady:
    """The steady client's submits, one at a time at a fixed rate: (sent at, latency, status) each."""

    target: Target
    rate: float
    samples: list[tuple[float, float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Submit until stopped, on one keep-alive connection, at `rate` per second."""
        connection, index, begin = Connection(self.target.port), 0, time.perf_counter()
        while not self.stop.is_set():
            intended = begin + index / self.rate
            if (delay := intended - time.perf_counter()) > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            status, _ = connection.request(self.target.submit_request(f"steady-{time.time_ns()}"))
            self.samples.append((sent, time.perf_counter() - sent, status))
            index += 1
        connection.close()


def measure_round(service: RunningService, args: argparse.Namespace, number: int) -> dict[str, object]:
    """Quiet, burst, quiet, with the steady client submitting throughout."""
    body = json.loads(SAMPLE.read_text())
    steady = Steady(Target(service.port, STEADY_KEY, body), args.steady_rate)
    thread = threading.Thread(target=steady.run, daemon=True)
    thread.start()
    ticks = cpu_ticks()
    try:
        time.sleep(args.quiet)
        burst = run_load(Target(service.port, burst_key(number), body), tag=f"burst{number}",
                         processes=2 if args.connections > 1 else 1, threads=max(1, args.connections // 2),
                         max_requests=args.burst, duration=args.max_burst_seconds, rate=args.burst_rate)
        time.sleep(args.quiet)
    finally:
        steady.stop.set()
        thread.join()
    during = [s for s in steady.samples if burst.started <= s[0] <= burst.ended]
    around = [s for s in steady.samples if s[0] < burst.started or s[0] > burst.ended]
    return {"around": around, "during": during, "burst": burst, "steal": steal_share(ticks, cpu_ticks())}


def report(rounds: list[dict[str, object]], args: argparse.Namespace) -> str:
    """The markdown table of the rounds."""
    lines = [
        f"# Burst and a steady client ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"`python -m bench.burst {' '.join(sys.argv[1:])}`: a client sends {args.burst} submits "
        f"{f'at {args.burst_rate:g}/s' if args.burst_rate else 'back to back'} on "
        f"{args.connections} connections (RATE_LIMIT 600/minute, MAX_QUEUED_PER_CLIENT 100, RATE_LIMIT_PAUSE "
        f"1 s); client `steady` submits {args.steady_rate:g}/s before, during and after it. Two API processes, "
        "PDF workers stopped.",
        "",
        "| round | steady around the burst: n, p50 / p95 / p99 ms | steady during the burst: n, p50 / p95 / p99 ms "
        "| p99 ratio | burst answers | burst seconds | burst requests/s | steady answers | steal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for number, row in enumerate(rounds, 1):
        around, during, burst = row["around"], row["during"], row["burst"]
        assert isinstance(around, list) and isinstance(during, list) and isinstance(burst, LoadResult)
        quiet, busy = [s[1] for s in around], [s[1] for s in during]
        ratio = percentile(busy, 99) / percentile(quiet, 99)
        answers = ", ".join(f"{status}: {count}" for status, count in sorted(burst.statuses.items()))
        steady_answers = dict(Counter(s[2] for s in around + during))
        lines.append(
            f"| {number} | {len(quiet)}, {p50_p95_p99(quiet)} | {len(busy)}, {p50_p95_p99(busy)} | {ratio:.2f} | "
            f"{answers} | {burst.duration:.1f} | {sum(burst.statuses.values()) / burst.duration:.0f} | "
            f"{steady_answers} | {steal_percent(row['steal'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the rounds against a fresh service and print (and optionally write) the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=10_000, help="submits of each burst")
    parser.add_argument("--connections", type=int, default=256, help="connections (threads) of the burst")
    parser.add_argument("--burst-rate", type=float, default=200.0,
                        help="burst submits per second, whatever the answers (0: back to back)")
    parser.add_argument("--max-burst-seconds", type=float, default=300.0, help="a burst stops after this anyway")
    parser.add_argument("--steady-rate", type=float, default=20.0, help="steady submits per second")
    parser.add_argument("--quiet", type=float, default=15.0, help="seconds of steady load before and after a burst")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pdfjobs-burst-") as scratch:
        service = RunningService(Path(scratch) / "var", service_env(args.rounds)).start()
        try:
            service.ctl("stop", "pdf_worker:*")
            rounds = [measure_round(service, args, number) for number in range(args.rounds)]
        finally:
            service.stop()
    text = report(rounds, args)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
