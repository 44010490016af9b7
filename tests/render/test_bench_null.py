"""BENCH_NULL_RENDER: the benchNull product exists only with the setting, and answers a real (tiny) PDF."""

from __future__ import annotations

from io import BytesIO

from pypdf import PdfReader

from config import Settings
from jobs.runtime import build_runtime


def test_bench_null_product_only_with_the_setting(tmp_path) -> None:
    plain = build_runtime(Settings(data_dir=tmp_path))
    bench = build_runtime(Settings(data_dir=tmp_path, bench_null_render=True))

    assert "benchNull" not in plain.templates and "benchNull" in bench.templates
    pdf = bench.templates.get("benchNull").render({"anything": 1}, code="x", job_id="pdf_0")  # as the worker calls it
    assert len(PdfReader(BytesIO(pdf)).pages) == 1 and len(pdf) < 3000
    assert bench.templates.get("benchNull").validate([1]) != []
