"""A real n8n for the tests of the shipped workflows: `python -m tests.e2e.n8n install` (or `make n8n`)
installs it once per machine from the npm registry; `N8n` runs one instance on loopback.

n8n is big (2.3k packages, 2.8 GB) and needs Node >= 24, so it is not part of `make test`'s install: the
tests that need it skip, saying how to install it, where it is missing. Node comes from the registry as well
(`node-linux-<arch>`, which ships the binary); n8n's SQLite driver is a native addon whose install script
downloads a prebuilt binary from outside the registry, so it is built here with node-gyp instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ops.harness import free_port, terminate_group

N8N_VERSION = "2.40.7"
NODE_VERSION = "24.22.3"  # n8n 2.40 refuses Node < 24
NODE_GYP_VERSION = "13.1.0"
INSTALL_DIR = Path.home() / ".cache" / "pdfjobs" / f"n8n-{N8N_VERSION}-node-{NODE_VERSION}"
READY_LINE = "Editor is now accessible via"  # what `n8n start` prints last when it is ready
GUARD = Path(__file__).resolve().with_name("loopback_guard.cjs")
_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


def node_package() -> str:
    """The npm package that ships this machine's Node binary."""
    return f"node-linux-{_ARCH.get(platform.machine().lower(), platform.machine().lower())}"


def node_home(target: Path = INSTALL_DIR) -> Path:
    """The folder of the installed Node (bin/node, include/node)."""
    return target / "node_modules" / node_package()


def installed(target: Path = INSTALL_DIR) -> bool:
    """Whether `install` finished in `target`."""
    return (target / "installed").is_file()


def install(target: Path = INSTALL_DIR) -> Path:
    """Install Node, n8n and node-gyp from the npm registry into `target` and build n8n's SQLite driver."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm not found: install Node.js's npm (Debian: apt-get install npm), then run this again")
    target.mkdir(parents=True, exist_ok=True)
    # --ignore-scripts: several of n8n's optional native addons download prebuilt binaries or sources from
    # outside the registry at install time; n8n loads them only for the nodes that need them (Kafka, ...).
    subprocess.run([npm, "install", "--prefix", str(target), "--ignore-scripts", "--no-audit", "--no-fund",
                    "--loglevel=error", f"{node_package()}@{NODE_VERSION}", f"n8n@{N8N_VERSION}",
                    f"node-gyp@{NODE_GYP_VERSION}"], check=True)
    node = node_home(target) / "bin" / "node"
    gyp = target / "node_modules" / "node-gyp" / "bin" / "node-gyp.js"
    env = os.environ | {"PATH": f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run([str(node), str(gyp), "rebuild", f"--nodedir={node_home(target)}"],
                   cwd=target / "node_modules" / "sqlite3", env=env, check=True, stdout=subprocess.DEVNULL)
    (target / "installed").write_text(f"n8n {N8N_VERSION}, node {NODE_VERSION}\n")
    return target


def unflatten(text: str) -> Any:
    """Decode n8n's stored execution data (the `flatted` format: one array; objects and arrays refer to
    their strings, objects and arrays by index, written as a string)."""
    values = json.loads(text)
    done: dict[int, Any] = {}

    def revive(index: int) -> Any:
        if index in done:
            return done[index]
        value = values[index]
        if isinstance(value, list):
            done[index] = out = []
            out.extend(refer(item) for item in value)
        elif isinstance(value, dict):
            done[index] = out = {}
            out.update((key, refer(item)) for key, item in value.items())
        else:
            done[index] = out = value
        return out

    def refer(item: Any) -> Any:
        return revive(int(item)) if isinstance(item, str) else item

    return revive(0)


@dataclass
class Execution:
    """One n8n execution as stored: its status and which nodes ran (with their outputs)."""

    id: int
    status: str
    run_data: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def outputs(self, node: str) -> list[dict[str, Any]]:
        """The items each run of `node` returned, all runs together."""
        items = []
        for run in self.run_data.get(node, []):
            for branch in (run.get("data") or {}).get("main") or []:
                items.extend(branch or [])
        return items


class N8n:
    """One n8n on 127.0.0.1 with a user folder of its own, every connection off loopback refused."""

    def __init__(self, folder: Path, target: Path = INSTALL_DIR) -> None:
        self.folder = folder
        self.port, self.broker_port = free_port(), free_port()
        self.node = node_home(target) / "bin" / "node"
        self.cli = target / "node_modules" / "n8n" / "bin" / "n8n"
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = os.environ | {
            "PATH": f"{self.node.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "N8N_USER_FOLDER": str(folder), "N8N_PORT": str(self.port), "N8N_LISTEN_ADDRESS": "127.0.0.1",
            "N8N_HOST": "127.0.0.1", "WEBHOOK_URL": self.base_url + "/",
            "N8N_RUNNERS_BROKER_PORT": str(self.broker_port),
            "N8N_DIAGNOSTICS_ENABLED": "false", "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
            "N8N_TEMPLATES_ENABLED": "false", "N8N_PERSONALIZATION_ENABLED": "false", "N8N_SECURE_COOKIE": "false",
            "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "false",
            "NODE_FUNCTION_ALLOW_BUILTIN": "crypto",  # as docs/n8n.md tells users to start n8n
            "NODE_OPTIONS": f"--require {GUARD}",  # inherited by n8n's task runners too
        }

    def command(self, *args: str, timeout: float = 120, **env: str) -> str:
        """Run an n8n CLI command against this instance's folder; its standard output."""
        done = subprocess.run([str(self.node), str(self.cli), *args], env=self.env | env, capture_output=True,
                              timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError(f"n8n {' '.join(args)} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
        return done.stdout.decode()

    def start(self, timeout: float = 120) -> N8n:
        """Start `n8n start` and wait until it is ready: /healthz answers and it printed its editor's URL.

        /healthz alone is too early: n8n listens before its start-up recovery, which marks as crashed any
        execution it finds running (one `execute` started then would be), and before it registers the
        Webhook nodes of published workflows; it prints the URL once both are done. Its first start also
        migrates its database."""
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "n8n.log").open("wb")  # this start's log only: READY_LINE is looked for in it
        self.process = subprocess.Popen([str(self.node), str(self.cli), "start"], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        from tests.e2e.conftest import poll  # here, so that `install` does not load the test suite

        poll(self._ready, timeout=timeout, what="n8n ready", interval=0.5)
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"n8n exited {self.process.returncode}: {self.log()[-2000:]}")
        try:
            answering = requests.get(f"{self.base_url}/healthz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False
        return answering and READY_LINE in self.log()

    def log(self) -> str:
        """What n8n printed so far."""
        path = self.folder / "n8n.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def import_json(self, kind: str, entities: list[dict[str, Any]]) -> None:
        """`n8n import:<kind>` of `entities` (workflows or credentials, plain JSON)."""
        path = self.folder / f"import-{kind}.json"
        path.write_text(json.dumps(entities))
        self.command(f"import:{kind}", f"--input={path}")

    def execute(self, workflow_id: str) -> dict[str, Any]:
        """`n8n execute --id` (the CLI runs it until it ends or waits, as the Manual trigger's Execute would),
        with a task broker port of its own beside the running instance's; the stored execution it printed."""
        out = self.command("execute", f"--id={workflow_id}", "--rawOutput", N8N_RUNNERS_BROKER_PORT=str(free_port()))
        return json.loads(out[out.index("{"):])

    def execution(self, execution_id: int) -> Execution:
        """An execution as n8n stored it in its SQLite database."""
        with sqlite3.connect(self.folder / ".n8n" / "database.sqlite") as db:
            status = db.execute("SELECT status FROM execution_entity WHERE id = ?", (execution_id,)).fetchone()
            data = db.execute("SELECT data FROM execution_data WHERE executionId = ?", (execution_id,)).fetchone()
        if status is None:
            raise AssertionError(f"n8n has no execution {execution_id}")
        run_data = ((unflatten(data[0]) if data else {}).get("resultData") or {}).get("runData") or {}
        return Execution(execution_id, status[0], run_data)

    def handled(self, workflow_id: str, node: str) -> list[dict[str, Any]]:
        """The `json` of every item `node` output in the finished executions of `workflow_id`, oldest first."""
        with sqlite3.connect(self.folder / ".n8n" / "database.sqlite") as db:
            ids = [row[0] for row in db.execute("SELECT id FROM execution_entity WHERE workflowId = ? AND finished = 1 "
                                                "ORDER BY id", (workflow_id,))]
        return [item["json"] for execution_id in ids for item in self.execution(execution_id).outputs(node)]

    def wait_for(self, execution_id: int, statuses: tuple[str, ...], timeout: float = 60) -> Execution:
        """The execution once its status is one of `statuses`."""
        from tests.e2e.conftest import poll

        return poll(lambda: (found := self.execution(execution_id)).status in statuses and found, timeout=timeout,
                    what=f"execution {execution_id} in {statuses}", interval=0.2)

    def stop(self) -> None:
        """Stop n8n and its task runners."""
        if self.process is not None:
            terminate_group(self.process, timeout=20)
            with contextlib.suppress(ProcessLookupError):  # a task runner left behind
                os.killpg(self.process.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    """`install`: put n8n and its Node in the per-machine cache the tests look in."""
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.n8n", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["install"])
    parser.parse_args(argv)
    if installed():
        print(f"n8n {N8N_VERSION} is installed in {INSTALL_DIR}")  # noqa: T201
        return 0
    print(f"installing n8n {N8N_VERSION} and Node {NODE_VERSION} into {INSTALL_DIR} (a few minutes, 2.8 GB)")  # noqa: T201
    install()
    print("done")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
