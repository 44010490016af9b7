"""The bench's pieces at tiny sizes, so `make bench` cannot rot. Checks what ran, never how fast."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import render
from bench.run import PLANS, run_bench, write_report

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)  # ~2 min with the batch step, up to 4 more with the many-host steps on shared cores
def test_bench_smoke_plan_runs_every_measurement_and_writes_the_table(tmp_path: Path) -> None:
    plan = PLANS["smoke"]
    results = run_bench(plan, tmp_path / "work")

    assert [(b.finished, b.failed) for b in results.bare] == [(plan.bare_default_jobs, 0), (plan.e2e_jobs, 0)]
    assert results.e2e is not None and results.e2e.completed == plan.e2e_jobs
    assert results.e2e.submit_statuses == {202: plan.e2e_jobs}
    assert results.idle is not None and len(results.idle.pickup) == plan.idle_jobs
    assert all(row.errors == 0 and row.result.count(202) > 0 for row in results.rates)
    assert results.empty_cost is not None and results.empty_cost.errors == 0
    assert results.growth is not None and results.growth.filled > 0 and results.growth.bytes_per_job > 0
    assert [row.queued for row in results.growth.rows][-1] >= max(plan.growth_sizes)
    # every size measured in turns with the reference service, whose queue was emptied before each turn
    assert len(results.growth.references) == len(results.growth.rows)
    for row, reference in zip(results.growth.rows, results.growth.references, strict=True):
        assert row.errors == reference.errors == 0
        assert len(row.submit) == len(reference.submit) == len(reference.status) == plan.cost_samples
    assert any(name.startswith("pdf_worker") for name, _ in results.rss)
    assert len(results.render_samples) == 1 + plan.rounds and results.render_cpu > 0
    batch = results.batch  # batches against single submits, on the same service
    assert batch is not None and batch.batch.statuses == {200: plan.batches}
    assert batch.batch.accepted == plan.batches * plan.batch_size and batch.batch.jobs_per_second > 0
    assert batch.single.accepted > 0 and batch.single.accepted == batch.single.statuses[202]
    assert [row.label.rsplit(", ", 1)[1] for row in results.busy_rates] == list(plan.busy_priorities)
    assert all(row.errors == 0 and row.result.count(202) > 0 for row in results.busy_rates)
    assert results.busy_queue_left > 0  # the workers had renders left: they were busy throughout
    assert [row.database for row in results.ceiling_rows] == list(plan.ceiling_databases)
    assert all(row.result.completed == row.result.webhooks == plan.null_jobs for row in results.ceiling_rows)
    assert all(row.cpu_ms_per_job()["pdf_worker"] > 0 for row in results.ceiling_rows)
    assert results.ceiling_bare is not None and results.ceiling_bare.finished == plan.null_jobs
    assert results.ceiling_bare.cpu_per_job > 0 and results.ceiling_bare.enqueue_cpu_per_job > 0

    first = write_report(results, tmp_path / "results")
    second = write_report(results, tmp_path / "results")  # a later run the same day keeps the first file
    assert second.name == first.name.replace(".md", "-2.md")
    text = first.read_text()
    assert text == render(results) == second.read_text()
    for line in ("ratio vs rq-default: ", "ratio vs rq-simple: ", "## Targets", "| cores |", "## Batch submit",
                 "batch / single jobs/s: ", "jobs/s accepted through the batch endpoint", "## Coordination ceiling",
                 "bare RQ under the same load, no-op jobs", "bare RQ, no-op jobs: ",
                 "workers saturated, WORKER_SCHED_IDLE=true",
                 *(f"coordination ceiling ({database})" for database in plan.ceiling_databases)):
        assert line in text


def test_sql_cost_claims_every_job_once_each_way(tmp_path: Path) -> None:
    from bench.sql_cost import claim_costs
    from store.db import make_engine, migrate

    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    costs = claim_costs(engine, 3)
    with engine.connect() as connection:
        statuses = connection.exec_driver_sql("SELECT status, attempts FROM pdf_job_results").all()
    engine.dispose()
    assert {way: len(seconds) for way, seconds in costs.items()} == {"session": 3, "connection": 3}
    assert sorted(statuses) == [("processing", 1)] * 6  # each job claimed, and only once


@pytest.mark.timeout(180)
def test_profile_jobs_runs_each_step_and_every_webhook_arrives() -> None:
    # a subprocess: the PDF worker installs its own signal handlers in the process it runs in
    done = subprocess.run([sys.executable, "-m", "bench.profile_jobs", "4", "0", "--null-render"],
                          cwd=PROJECT_DIR, capture_output=True, text=True, timeout=170, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    for step in ("=== submit", "=== PDF worker: ", "=== webhook worker"):
        assert step in done.stdout
    assert "webhooks received: 4/4 (bad signatures 0, duplicates 0)" in done.stdout
