"""What the bench ran on: cores, memory, CPU, Python, Redis and package versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from ops.embedded_redis import redis_server_binary

PACKAGES = (
    "rq", "redis", "hiredis", "typst", "reportlab", "rl_accel", "flask", "gunicorn", "gevent", "sqlalchemy",
    "supervisor", "pydantic",
)


def cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0))


def cpu_ticks() -> tuple[int, ...]:
    """The machine's CPU time counters since boot (/proc/stat's `cpu` line: user, nice, system, idle,
    iowait, irq, softirq, steal, ...); empty where there is no /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            return tuple(int(value) for value in stat.readline().split()[1:])
    except (OSError, ValueError):
        return ()


def steal_share(before: tuple[int, ...], after: tuple[int, ...]) -> float | None:
    """The share of CPU time the hypervisor gave to other guests (steal) between two `cpu_ticks`
    readings; None when unknown. A virtual machine's speed drifts with it: in a round where it is
    20-30 %, a report renders 30-40 % slower than in a quiet one."""
    if len(before) < 8 or len(after) < 8:
        return None
    spent = [now - then for then, now in zip(before[:8], after[:8], strict=True)]
    total = sum(spent)  # guest time is counted in user time already
    return spent[7] / total if total > 0 else None


def steal_percent(share: float | None) -> str:
    """A `steal_share` as the percentage the reports print ("n/a" when unknown)."""
    return "n/a" if share is None else f"{share * 100:.1f}"


def memory_total() -> str:
    """Total memory from /proc/meminfo, in GiB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def cpu_model() -> str:
    """The CPU model name."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def redis_version() -> str:
    """`redis-server --version` of the server the project starts."""
    binary = redis_server_binary()
    output = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False).stdout
    version = next((part for part in output.split() if part.startswith("v=")), "v=unknown")
    return f"{version[2:]} ({binary})"


def describe() -> list[tuple[str, str]]:
    """(name, value) rows describing the machine and software."""
    versions = ", ".join(f"{name} {_version(name)}" for name in PACKAGES)
    return [
        ("cores", str(cores())),
        ("cpu", cpu_model()),
        ("memory", memory_total()),
        ("os", platform.platform()),
        ("python", platform.python_version()),
        ("redis-server", redis_version()),
        ("packages", versions),
    ]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"
