"""`make fuzz`: the schemathesis CLI against the real service, from the service's own /api/openapi.json.

Starts the whole service (supervisord, gunicorn, workers) in a scratch directory, runs every
schemathesis phase (examples, coverage: boundary and wrong-type values, fuzzing, stateful) with the
`not_a_server_error` check, then counts the jobs it got accepted per product in SQL. Fails when a
response is a 5xx (schemathesis prints the request as a curl command) or a product got no job.

    .venv/bin/python -m tests.e2e.fuzz_run [--max-examples N] [--seed S]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import func, select

from ops.harness import RunningService
from render import load_registry
from store.models import JobRecord
from tests.conftest import auth
from tests.e2e.conftest import E2E_ENV

CHECKS = "not_a_server_error"
PHASES = "examples,coverage,fuzzing,stateful"


def run_schemathesis(service: RunningService, max_examples: int, seed: int | None, scratch: Path) -> int:
    """The CLI's exit code: 0 when no response was a 5xx (it keeps its cache in `scratch`)."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{service.base_url}/api/openapi.json",
        "--checks", CHECKS, "--phases", PHASES, "--max-examples", str(max_examples), "--no-color",
        "--header", f"Authorization: {auth()['Authorization']}", "--request-timeout", "90",
    ]
    if seed is not None:
        command += ["--seed", str(seed)]
    return subprocess.run(command, check=False, cwd=scratch).returncode


def accepted_per_product(service: RunningService) -> dict[str, int]:
    """Jobs the run got accepted, by product (every product of the registry listed)."""
    with service.session_factory()() as session:
        rows = session.execute(select(JobRecord.product_id, func.count()).group_by(JobRecord.product_id)).all()
    counts = {template.product_id: 0 for template in load_registry().all()}
    return counts | {product: count for product, count in rows}


def main(argv: list[str] | None = None) -> int:
    """Run the fuzz; 0 when it saw no server error and every product had a job accepted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=200, help="test cases per operation and phase")
    parser.add_argument("--seed", type=int, default=None, help="repeat an earlier run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pdfjobs-fuzz-") as scratch:
        env = E2E_ENV | {"MAX_QUEUE_SIZE": "1000000", "SYNC_TIMEOUT": "5"}
        with RunningService(Path(scratch) / "var", env) as service:
            code = run_schemathesis(service, args.max_examples, args.seed, Path(scratch))
            accepted = accepted_per_product(service)
    missing = sorted(product for product, count in accepted.items() if not count)
    print(f"fuzz: schemathesis exit code {code} ({'0 server errors' if code == 0 else 'see the failures above'}); "  # noqa: T201
          f"accepted jobs per product {accepted}" + (f"; no job accepted for {missing}" if missing else ""))
    return 0 if code == 0 and not missing else 1


if __name__ == "__main__":
    sys.exit(main())
