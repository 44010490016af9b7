"""The bare-RQ job: the same render call the service makes, and nothing else (no SQL, no storage)."""

from __future__ import annotations

import os

from bench.sample_data import data_for
from render import load_registry


def render_report(code: str) -> int:
    """Render one minatBakatUmum report as the service's job does (the Typst template), with the data
    `data_for(code)`; return its size."""
    return len(load_registry().get("minatBakatUmum").render(data_for(code), code=code, job_id=code))


def warm_up(code: str) -> int:
    """One render, so the worker process has imported Typst and loaded the templates; returns its pid."""
    render_report(code)
    return os.getpid()


def null_job(code: str) -> None:
    """Nothing: the job of the bare-RQ row under the coordination ceiling, where only RQ's own cost is left."""
