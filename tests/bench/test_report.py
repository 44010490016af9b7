"""The bench report pairs each service round with the bare-RQ round and render sample taken just before it."""

from __future__ import annotations

from types import SimpleNamespace

from bench import machine
from bench.report import Results


def _results() -> Results:
    results = Results("full", "2026-11-22", [], cores=2, render_samples=[0.020, 0.020, 0.030])
    results.bare = [
        SimpleNamespace(worker_class="rq.worker.Worker", round_no=1, jobs_per_second=6.0),
        SimpleNamespace(worker_class="rq.worker.SimpleWorker", round_no=1, jobs_per_second=50.0, cpu_per_job=0.024),
        SimpleNamespace(worker_class="rq.worker.SimpleWorker", round_no=2, jobs_per_second=30.0,  # a slow spell
                        cpu_per_job=0.036),
    ]
    results.e2e_runs = [SimpleNamespace(jobs_per_second=40.0, cpu_per_job=0.030),
                        SimpleNamespace(jobs_per_second=27.0, cpu_per_job=0.040)]
    return results


def test_each_round_is_compared_with_its_neighbours_not_with_the_best_round() -> None:
    results = _results()
    rounds = results.paired_rounds()
    assert [row[0] for row in rounds] == [1, 2]
    assert [round(row[1], 3) for row in rounds] == [0.8, 0.9]  # 40/50, 27/30; best-of would say 40/50
    assert [round(row[2], 3) for row in rounds] == [0.4, 0.405]  # 40 * 0.020 / 2, 27 * 0.030 / 2
    assert [round(row[3], 3) for row in rounds] == [0.8, 0.9]  # CPU per job 24/30, 36/40; min/min says 24/30
    assert round(results.paired_median(1), 3) == 0.85


def test_a_round_without_a_neighbour_is_left_out_of_the_median() -> None:
    results = _results()
    results.e2e_runs.append(SimpleNamespace(jobs_per_second=10.0, cpu_per_job=0.05))  # round 3: no neighbours
    assert results.paired_rounds()[2][1:] == (None, None, None)
    assert round(results.paired_median(1), 3) == 0.85


def test_steal_share_is_the_stolen_part_of_the_cpu_time_between_two_readings() -> None:
    before = (100, 0, 50, 800, 0, 0, 0, 50, 0, 0)
    after = (200, 0, 100, 900, 0, 0, 0, 100, 7, 0)  # 300 ticks spent: 100 user, 50 system, 100 idle, 50 steal
    assert machine.steal_share(before, after) == 50 / 300
    assert machine.steal_share((), after) is None  # no /proc/stat
    assert machine.steal_share(before, before) is None  # no time passed


def test_cpu_ticks_reads_this_machines_counters() -> None:
    ticks = machine.cpu_ticks()
    assert len(ticks) >= 8 and sum(ticks) > 0


def test_previous_renderer_is_shown_beside_the_new_one() -> None:
    from bench.report import _throughput

    results = Results("quick", "2026-12-07", [], cores=2, render_samples=[0.020, 0.021])
    results.legacy_render_samples = [0.024, 0.022]
    [row] = [line for line in _throughput(results) if line.startswith("| previous renderer")]
    assert "22.0 ms CPU/report, fastest of 24.0 / 22.0" in row and "Typst template: 1.10x faster" in row


def test_the_targets_say_whether_the_fastest_render_sample_is_within_12_ms() -> None:
    from bench.report import _targets

    results = Results("full", "2026-12-07", [], cores=2, render_samples=[0.0131, 0.0119],
                      legacy_render_samples=[0.0193, 0.0201])
    [row] = [line for line in _targets(results) if "render CPU" in line]
    assert "11.9 ms; reportlab 19.3 ms" in row and row.endswith("| met |")
    results.render_samples = [0.0125]
    [row] = [line for line in _targets(results) if "render CPU" in line]
    assert row.endswith("| MISSED |")


def test_the_targets_show_the_busy_step_with_a_spare_core_beside_the_default_one() -> None:
    from bench.ha_report import SPARE_CORE_LABEL
    from bench.report import _targets

    def busy(label: str, latency: float) -> SimpleNamespace:
        return SimpleNamespace(offered=200, label=label, result=SimpleNamespace(latencies=[latency] * 100))

    results = Results("full", "2026-12-07", [], cores=2)
    results.busy_rates = [busy("200 req/s, workers saturated, WORKER_SCHED_IDLE=true", 0.030),
                          busy(f"200 req/s, workers saturated, WORKER_SCHED_IDLE=true, 1 {SPARE_CORE_LABEL} 2 cores",
                               0.012)]
    rows = [line for line in _targets(results) if "workers saturated" in line]
    assert rows == ["| submit p99 < 15 ms at 200 req/s, workers saturated | 30.0 ms | MISSED |",
                    "| submit p99 < 15 ms at 200 req/s, workers saturated, a PDF worker fewer than cores | 12.0 ms "
                    "| met |"]
