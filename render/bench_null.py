"""The bench's null product (`benchNull`): any data, one tiny fixed PDF, no rendering cost.

Registered only with BENCH_NULL_RENDER=1 (jobs/runtime.py): `make bench` measures the coordination
ceiling with it, jobs/s through API + SQL + Redis + webhook when rendering costs nothing.
"""

from __future__ import annotations

from functools import cache
from io import BytesIO
from typing import Any

from render.base import Progress, Template

PRODUCT_ID = "benchNull"


@cache
def tiny_pdf() -> bytes:
    """A blank one-page PDF, built once per process."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=100)
    buffer = BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


class BenchNullTemplate(Template):
    """Accepts any `data` object and answers the same tiny PDF."""

    product_id = PRODUCT_ID
    title = "Bench: no rendering (BENCH_NULL_RENDER)"
    kind = "report"

    def schema(self) -> dict[str, Any]:
        """Any JSON object."""
        return {"type": "object"}

    def validate(self, data: object) -> list[dict[str, str]]:
        """Only that `data` is an object."""
        return [] if isinstance(data, dict) else [{"field": "data", "message": "must be an object"}]

    def render(self, data: dict[str, Any], progress: Progress | None = None, *, code: str | None = None) -> bytes:
        """The fixed PDF."""
        return tiny_pdf()

    def warm_up(self) -> None:
        """Build the PDF before the first job."""
        tiny_pdf()
