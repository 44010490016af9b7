"""`python -m bench.sql_cost [N]`: the claim with its commit, through a Session and on a Core Connection.

The claim is the PDF worker's first statement (UPDATE ... RETURNING the row, then COMMIT); the worker
runs it on a Connection (`engine.begin()`). Both ways run the same statement on the same SQLite
database, interleaved job by job so that the machine's drift hits both alike; the figures are
microseconds of wall time per claim.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from bench.sample_data import sample_data
from jobs.submit import JobRequest, new_job_row
from store import jobs as job_store
from store.db import make_engine, make_session_factory, migrate


def claim_costs(engine: Engine, jobs: int) -> dict[str, list[float]]:
    """Seconds per claim of `jobs` new jobs each way, alternating which way goes first."""
    sessions = make_session_factory(engine)
    ways: dict[str, Callable[[str], object]] = {
        "session": lambda job_id: _claim_in_session(sessions, job_id),
        "connection": lambda job_id: _claim_on_connection(engine, job_id),
    }
    queued = {way: [_new_job(sessions, f"{way}-{n}") for n in range(jobs)] for way in ways}
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    for number in range(jobs):
        for way in sorted(ways, reverse=bool(number % 2)):
            started = time.perf_counter()
            ways[way](queued[way][number])
            seconds[way].append(time.perf_counter() - started)
    return seconds


def _new_job(sessions, code: str) -> str:  # noqa: ANN001
    request = JobRequest(code=code, product_id="minatBakatUmum", data=sample_data())
    with sessions() as session:
        return job_store.create_job(session, new_job_row("bench", request)).job_id


def _claim_in_session(sessions, job_id: str) -> object:  # noqa: ANN001
    # The same statement in a Session's transaction: what a Session adds to a Connection's execution.
    with sessions() as session:
        job = job_store.mark_started(session.connection(), job_id)
        session.commit()
        return job.request_data


def _claim_on_connection(engine: Engine, job_id: str) -> object:
    with engine.begin() as connection:
        return job_store.mark_started(connection, job_id).request_data


def main(argv: list[str]) -> int:
    """Print the median and fastest claim each way, in microseconds."""
    jobs = int(argv[0]) if argv else 400
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'jobs.sqlite3'}"
        migrate(url)
        engine = make_engine(url)
        costs = claim_costs(engine, jobs)
        engine.dispose()
    summary = {way: {"median_us": round(statistics.median(values) * 1e6), "fastest_us": round(min(values) * 1e6)}
               for way, values in costs.items()}
    print(json.dumps({"claims_each_way": jobs, **summary}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
