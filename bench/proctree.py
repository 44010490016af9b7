"""CPU seconds of a process tree by supervisor program, read from /proc (Linux).

supervisord puts SUPERVISOR_GROUP_NAME (the program's name) in the environment of each program it
starts, and the program's own children (gunicorn's workers, Redis's background saves) inherit it,
so every process can be named by its program whatever the checkout's module paths are.
"""

from __future__ import annotations

import os
from pathlib import Path

LAUNCHER = "launcher"  # the root: `python -m ops.run` (or service.run), waiting on supervisord
SUPERVISORD = "supervisord"
PROGRAM_VARIABLE = b"SUPERVISOR_GROUP_NAME="
# Programs that overwrite their environment's memory (redis-server sets its process title there),
# named by their process name instead.
PROCESS_NAMES = {"redis-server": "redis"}


def process_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds) of every live process, in one pass over /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we read
        # utime + stime + cutime + cstime: children that ended and were waited for count for their
        # parent, so a sum over the live tree counts every CPU second once.
        table[int(entry.name)] = (int(fields[1]), sum(int(value) for value in fields[11:15]) / tick)
    return table


def descendants(root: int, table: dict[int, tuple[int, float]]) -> list[int]:
    """`root` and every process below it, parents before children."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, pending = [], [root] if root in table else []
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending += children.get(pid, [])
    return found


def start_times(pids: list[int]) -> dict[int, str]:
    """pid -> the process's start time in clock ticks since boot: with the pid, it names one process
    (a pid alone may be reused once its process ended)."""
    found = {}
    for pid in pids:
        try:
            found[pid] = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        except (OSError, IndexError):
            continue
    return found


def program_of(pid: int) -> str | None:
    """The supervisor program a process belongs to (from its environment, else its process name);
    None outside supervisor."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None
    for item in environ.split(b"\0"):
        if item.startswith(PROGRAM_VARIABLE):
            return item[len(PROGRAM_VARIABLE):].decode(errors="replace")
    return PROCESS_NAMES.get(name)


class ProcessTree:
    """The processes below one root pid, their CPU seconds summed by program."""

    def __init__(self, root: int):
        self.root = root
        self.labels: dict[int, str] = {}  # a pid keeps its label: the environment is read once per process

    def cpu_by_program(self) -> dict[str, float]:
        """CPU seconds each program's processes have used so far (ended children included)."""
        table = process_table()
        used: dict[str, float] = {}
        for pid in descendants(self.root, table):
            label = self.labels.get(pid) or self._label(pid, table)
            used[label] = used.get(label, 0.0) + table[pid][1]
        return used

    def _label(self, pid: int, table: dict[int, tuple[int, float]]) -> str:
        parent = table[pid][0]
        if pid == self.root:
            label = LAUNCHER
        else:
            # supervisord is the launcher's child that no program variable names
            label = program_of(pid) or (SUPERVISORD if parent == self.root else self.labels.get(parent, SUPERVISORD))
        self.labels[pid] = label
        return label


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per program between two `cpu_by_program` readings."""
    return {label: after[label] - before.get(label, 0.0) for label in after}
