"""Test-only templates, installed in-process with `Runtime.overrides['templates']` (never in production)."""

from __future__ import annotations

import threading
from typing import Any

from jobs.runtime import Runtime
from render.base import Progress, RenderError, Template, report_progress
from render.registry import TemplateRegistry, load_registry
from tests.conftest import sample_request


class GatedTemplate(Template):
    """Renders the sample report only once `gate` is set: a job that runs until the test says so."""

    product_id = "gatedReport"
    title = "Gated report (tests)"
    kind = "report"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.timed_out = False

    def schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def validate(self, data: object) -> list[dict[str, str]]:
        return []

    def render(self, data: dict[str, Any], progress: Progress | None = None, *, code: str | None = None,
               job_id: str | None = None) -> bytes:
        report_progress(progress, 50, "waiting at the gate")
        self.entered.set()
        try:  # like libraries that log and go on (pypdf does, in form flattening): a stop must get through
            opened = self.gate.wait(timeout=30)  # interrupted by the stop signal in the cancel tests
        except Exception:  # noqa: BLE001
            opened = self.gate.wait(timeout=30)
        if not opened:
            self.timed_out = True
            raise TimeoutError("the test never opened the gate")
        return load_registry().get("minatBakatUmum").render(sample_request()["data"], code=code, job_id=job_id)


class FailingOnceTemplate(Template):
    """Fails with a permanent error on its first render, then renders the sample report."""

    product_id = "failingOnce"
    title = "Fails once (tests)"
    kind = "report"

    def __init__(self) -> None:
        self.calls = 0

    def schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def validate(self, data: object) -> list[dict[str, str]]:
        return []

    def render(self, data: dict[str, Any], progress: Progress | None = None, *, code: str | None = None,
               job_id: str | None = None) -> bytes:
        self.calls += 1
        if self.calls == 1:
            raise RenderError("the source document was incomplete")
        return load_registry().get("minatBakatUmum").render(sample_request()["data"], code=code, job_id=job_id)


class UnavailableTemplate(Template):
    """Fails with a transient error every time (a dependency that is down): RQ schedules retries."""

    product_id = "dependencyDown"
    title = "Dependency down (tests)"
    kind = "report"

    def schema(self) -> dict[str, Any]:
        return {"type": "object"}

    def validate(self, data: object) -> list[dict[str, str]]:
        return []

    def render(self, data: dict[str, Any], progress: Progress | None = None, *, code: str | None = None,
               job_id: str | None = None) -> bytes:
        raise ConnectionError("the report data service does not answer")


def install(rt: Runtime, *templates: Template) -> None:
    """Serve the built-in report plus `templates` from this runtime (before its first template lookup)."""
    rt.overrides["templates"] = TemplateRegistry([load_registry().get("minatBakatUmum"), *templates])
