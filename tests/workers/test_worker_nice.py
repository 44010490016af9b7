"""WORKER_NICE and WORKER_SCHED_IDLE: a PDF worker process lowers its own CPU priority at start (in a child:
neither can be undone)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import PROJECT_DIR

SCRIPT = (
    "import os; from workers.pdf_worker import lower_cpu_priority; "
    "print(lower_cpu_priority({wanted}, {idle}), lower_cpu_priority(0), os.getpriority(os.PRIO_PROCESS, 0), "
    "os.sched_getscheduler(0))"
)


def priority_after(wanted: int, start_at: int = 0, *, idle: bool = False) -> list[int]:
    command = [sys.executable, "-c", SCRIPT.format(wanted=wanted, idle=idle)]
    if start_at:
        command = ["nice", "-n", str(start_at), *command]
    output = subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, check=True).stdout
    return [int(value) for value in output.split()]


def test_worker_runs_at_the_configured_niceness_and_never_raises_its_priority() -> None:
    assert priority_after(10) == [10, 10, 10, os.SCHED_OTHER]  # the later call with 0 leaves it at 10
    assert priority_after(5, start_at=12) == [12, 12, 12, os.SCHED_OTHER]  # started nicer already: left alone


def test_worker_under_sched_idle_keeps_it() -> None:
    assert priority_after(10, idle=True) == [10, 10, 10, os.SCHED_IDLE]
