"""The bare-RQ job: the same render call the service makes, and nothing else (no SQL, no storage)."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from render import load_registry

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "minatBakatUmum.json"


@cache
def sample_data() -> dict[str, Any]:
    """The data of the sample minatBakatUmum request."""
    return json.loads(SAMPLE.read_text())["data"]


def render_report(code: str) -> int:
    """Render one minatBakatUmum report as the service's job does (the Typst template); return its size."""
    return len(load_registry().get("minatBakatUmum").render(sample_data(), code=code, job_id=code))


def warm_up(code: str) -> int:
    """One render, so the worker process has imported Typst and loaded the templates; returns its pid."""
    render_report(code)
    return os.getpid()
