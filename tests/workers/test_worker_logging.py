"""The worker's RQ log level: RQ's per-job INFO lines are dropped, other levels pass through."""

from __future__ import annotations

from workers.pdf_worker import rq_log_level


def test_rq_log_level_turns_info_into_warning() -> None:
    assert rq_log_level("INFO") == "WARNING"


def test_rq_log_level_keeps_debug_and_higher_levels() -> None:
    assert [rq_log_level(level) for level in ("DEBUG", "WARNING", "ERROR")] == ["DEBUG", "WARNING", "ERROR"]
