"""`make run` as a user runs it, in a copy of the project: supervisorctl from any shell, the README's try-it.

The copy keeps the test from repointing the developer's own supervisor/supervisord.conf; it runs
with this test run's interpreter (the project's virtualenv), as `make run` would run `.venv/bin/python`.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ops.harness import free_port
from tests.conftest import PROJECT_DIR

CLEAN_ENV = {"PATH": "/usr/bin:/bin", "LOOPBACK_ONLY": "1"}  # a new shell: none of make run's variables


@dataclass
class MadeRun:
    """A `python -m ops.run` started in a copy of the project."""

    project: Path
    port: int
    process: subprocess.Popen[str]
    banner: str


def copy_project(target: Path) -> Path:
    """The tracked files of the project (plus this working tree's changes), without .venv or var."""
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=PROJECT_DIR,
                             capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        source = PROJECT_DIR / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def read_banner(process: subprocess.Popen[str], timeout: float = 120) -> str:
    """make run's output up to its banner's last line."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline() if process.stdout else ""
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            return "".join(lines)
    raise AssertionError("make run printed no banner:\n" + "".join(lines[-40:]))


@pytest.fixture(scope="module")
def made_run(tmp_path_factory) -> Iterator[MadeRun]:
    project = copy_project(tmp_path_factory.mktemp("project"))
    port = free_port()
    env = {**os.environ, "PORT": str(port), "WORKERS": "1", "DATA_DIR": "./var"}
    for name in ("REDIS_URL", "DATABASE_URL", "API_CLIENTS"):
        env.pop(name, None)
    process = subprocess.Popen([sys.executable, "-u", "-m", "ops.run"], cwd=project, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield MadeRun(project, port, process, read_banner(process))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def shell(command: str, cwd: Path | str = "/") -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, shell=True, cwd=cwd, env=CLEAN_ENV, capture_output=True, text=True, timeout=60)


def assert_all_running(status: str) -> None:
    for program in ("api", "pdf_worker:pdf_worker-00", "scheduler", "webhook_worker:webhook_worker-00", "redis"):
        assert re.search(rf"^{re.escape(program)}\s+RUNNING", status, re.M), status


def test_banner_supervisorctl_command_works_from_a_new_shell(made_run) -> None:
    printed = re.search(r"supervisor\s+(\S+supervisorctl -c \S+) status", made_run.banner)
    assert printed, made_run.banner
    assert_all_running(shell(f"{printed.group(1)} status").stdout)


def test_supervisor_conf_in_the_project_points_at_the_running_service(made_run) -> None:
    conf = made_run.project / "supervisor" / "supervisord.conf"
    supervisorctl = Path(sys.executable).parent / "supervisorctl"
    assert_all_running(shell(f"{supervisorctl} -c {conf} status").stdout)
    assert_all_running(shell(f"{supervisorctl} -c supervisor/supervisord.conf status", cwd=made_run.project).stdout)


def test_make_ctl_finds_the_run_without_its_environment(made_run) -> None:
    result = shell(f"{sys.executable} -m ops.ctl status", cwd=made_run.project)
    assert_all_running(result.stdout)


def test_generated_config_is_private(made_run) -> None:
    conf = (made_run.project / "supervisor" / "supervisord.conf").resolve()
    assert conf.parent == (made_run.project / "var").resolve()
    assert conf.stat().st_mode & 0o777 == 0o600


def test_first_start_prints_the_generated_dashboard_password_and_the_cli_shows_it(made_run) -> None:
    password = (made_run.project / "var" / "dashboard-password").read_text()
    assert f"login admin / {password}   (generated now, shown this once" in made_run.banner
    login = {"Authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()}
    request = urllib.request.Request(f"http://127.0.0.1:{made_run.port}/rq/", headers=login)
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    shown = subprocess.run([sys.executable, "-m", "ops.cli", "dashboard-password"], cwd=made_run.project,
                           env={**CLEAN_ENV, "DATA_DIR": "./var"}, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and f"password:  {password}" in shown.stdout, shown.stderr


def readme_try_it_block() -> str:
    """The shell block of the README's "Try it" section, as printed."""
    readme = (PROJECT_DIR / "README.md").read_text()
    section = readme.split("## Try it", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_readme_try_it_block_runs_as_printed(made_run) -> None:
    block = readme_try_it_block().replace("127.0.0.1:8000", f"127.0.0.1:{made_run.port}")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=made_run.project, env=CLEAN_ENV,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (made_run.project / "report.pdf").read_bytes().startswith(b"%PDF-")
    assert '"status": "completed"' in result.stdout or '"status":"completed"' in result.stdout, result.stdout

