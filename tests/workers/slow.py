"""A template registry for tests whose renders take a while (to test timeouts, kills, cancels)."""

from __future__ import annotations

import time
from typing import Any


class SlowTemplate:
    """Wraps a real template; render sleeps `delay` seconds first (interruptible by signals)."""

    def __init__(self, inner: Any, delay: float):
        self.inner, self.delay = inner, delay
        self.renders = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def render(self, data: dict, progress: Any = None, *, code: str | None = None,
               job_id: str | None = None) -> bytes:
        self.renders += 1
        deadline = time.monotonic() + self.delay
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return self.inner.render(data, progress, code=code, job_id=job_id)


class SlowRegistry:
    """Every template of `inner` wrapped in SlowTemplate."""

    def __init__(self, inner: Any, delay: float):
        self.inner = inner
        self.templates = {template.product_id: SlowTemplate(template, delay) for template in inner.all()}

    def get(self, product_id: str) -> SlowTemplate:
        self.inner.get(product_id)  # raises UnknownTemplateError as the real one does
        return self.templates[product_id]

    def all(self) -> list[SlowTemplate]:
        return list(self.templates.values())
