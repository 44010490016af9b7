"""One side of the A/B bench: a checkout (a directory, or a git revision in a temporary worktree) and
the whole service started from it, as `make run` would, in its own DATA_DIR and on its own port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.proctree import ProcessTree, descendants, process_table, start_times
from ops.harness import free_port, session_members, terminate_group
from ops.run import wait_ready

REPO_DIR = Path(__file__).resolve().parent.parent
# Launchers by age: the service/ package was renamed ops/ (both read the same environment variables).
LAUNCHERS = ("ops.run", "service.run")
# Variables that would point a side at shared state or at another checkout's code, and those that
# name a supervisor program (when the bench itself runs under supervisor; bench.proctree reads them).
NOT_INHERITED = ("REDIS_URL", "DATABASE_URL", "MONGO_URI", "PUBLIC_BASE_URL", "PYTHONPATH", "SUPERVISOR_ENABLED",
                 "SUPERVISOR_PROCESS_NAME", "SUPERVISOR_GROUP_NAME", "SUPERVISOR_SERVER_URL")


@dataclass(frozen=True)
class Checkout:
    """Where a side's code is: `spec` as given, its directory, and the commit when it is a git revision."""

    spec: str
    path: Path
    commit: str | None = None

    @property
    def launcher(self) -> str:
        """The module that starts the service in this checkout (`ops.run`, or `service.run` before)."""
        for module in LAUNCHERS:
            if (self.path / f"{module.replace('.', '/')}.py").is_file():
                return module
        raise FileNotFoundError(f"{self.path} has neither ops/run.py nor service/run.py: not this service's code")

    def describe(self) -> str:
        """`spec` and what it resolved to."""
        where = f"commit {self.commit[:10]}, temporary worktree" if self.commit else str(self.path)
        return f"`{self.spec}` ({where}), started with `python -m {self.launcher}`"


def _git(*args: str) -> str:
    result = subprocess.run(["git", "-C", str(REPO_DIR), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ValueError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


@contextmanager
def checkout(spec: str, work_dir: Path, name: str) -> Iterator[Checkout]:
    """SPEC as a checkout: a directory as it is, or a git revision of this repository checked out in a
    detached worktree under WORK_DIR, removed on the way out."""
    if Path(spec).is_dir():
        yield Checkout(spec, Path(spec).resolve())
        return
    commit = _git("rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}")
    path = work_dir / f"checkout-{name}"
    try:
        _git("worktree", "add", "--detach", str(path), commit)
        yield Checkout(spec, path, commit)
    finally:
        if path.exists():
            subprocess.run(["git", "-C", str(REPO_DIR), "worktree", "remove", "--force", str(path)],
                           capture_output=True, check=False)
        subprocess.run(["git", "-C", str(REPO_DIR), "worktree", "prune"], capture_output=True, check=False)


def side_environment(base: dict[str, str], data_dir: Path, port: int, extra: dict[str, str]) -> dict[str, str]:
    """The launcher's environment: BASE without shared-state variables, this side's DATA_DIR and PORT, EXTRA."""
    env = {key: value for key, value in base.items() if key not in NOT_INHERITED}
    return env | {"DATA_DIR": str(data_dir), "PORT": str(port)} | extra


class ServiceSide:
    """The service of one checkout: its launcher in a session of its own, supervisord and programs below."""

    def __init__(self, name: str, source: Checkout, work_dir: Path, env: dict[str, str]):
        self.name = name
        self.checkout = source
        self.data_dir = work_dir / f"data-{name}"
        self.port = free_port()
        self.env = side_environment(dict(os.environ), self.data_dir, self.port, env)
        self.log_path = work_dir / f"service-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.tree: ProcessTree | None = None

    def start(self, timeout: float = 120) -> ServiceSide:
        """Start the launcher (cwd = the checkout, this interpreter) and wait until /readyz answers 200."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # A session of its own: Ctrl-C on the bench's terminal reaches the bench only, which stops it.
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.checkout.launcher], cwd=self.checkout.path, env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.tree = ProcessTree(self.process.pid)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        if not wait_ready(f"http://127.0.0.1:{self.port}", self.process, timeout):
            ended = self.process.poll()
            state = f"exited with {ended}" if ended is not None else f"not ready after {timeout} s"
            raise RuntimeError(f"side {self.name}: the launcher {state}\n{self.log_tail()}")

    def check_running(self) -> None:
        """Raise, with the log's tail, when the launcher ended (a round on it could only time out)."""
        if self.process is None or self.process.poll() is not None:
            code = self.process.returncode if self.process else None
            raise RuntimeError(f"side {self.name}: the launcher is not running (exit {code})\n{self.log_tail()}")

    def get_json(self, path: str, api_key: str) -> dict:
        """GET an API path as the bench client."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                         headers={"Authorization": f"Bearer {api_key}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def cpu_by_program(self) -> dict[str, float]:
        """CPU seconds of every process of this side so far, by supervisor program."""
        return self.tree.cpu_by_program() if self.tree else {}

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the launcher's output (supervisord and every program log there)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 90) -> None:
        """SIGTERM the launcher (it stops supervisord, which stops every program) and wait; on timeout
        kill its process group, then whatever is left in its session or below it."""
        if self.process is None:
            return
        below = start_times(descendants(self.process.pid, process_table())[1:])  # before a kill reparents them
        terminate_group(self.process, timeout)
        # supervisord gives each program a process group of its own, so a group kill misses them
        left = set(session_members(self.process.pid))
        left |= {pid for pid, started in start_times(list(below)).items() if below[pid] == started}
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process = None
