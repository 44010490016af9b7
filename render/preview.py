"""Previews for template authors: one render in a child process, killed when it runs past its time.

A template can be slow or loop with some data; the child keeps that away from the process that asked
(an API worker) and its limits (CPU seconds, memory) hold even when Typst is busy in native code.
The child is `python -m render.preview`: a JSON request on stdin, the PDF on stdout, or a JSON error
on stderr with exit status 3 (the data) or 4 (the template).
"""

from __future__ import annotations

import dataclasses
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from render.base import RenderError, TemplateError
from render.context import ReportContext
from render.registry import load_product

PROJECT_DIR = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 2 * 1024**3  # bytes of address space the child may use
DATA_ERROR, TEMPLATE_ERROR = 3, 4


class PreviewTimeoutError(RenderError):
    """The preview did not finish within its time limit."""


def preview_pdf(product_id: str, data: dict[str, Any], *, templates_dir: Path | None, context: ReportContext,
                timeout: float) -> bytes:
    """Render `data` with the product's template in a child process; raise RenderError or TemplateError."""
    request = {"product_id": product_id, "data": data, "templates_dir": str(templates_dir) if templates_dir else None,
               "context": _context_json(context), "timeout": timeout}
    try:
        done = subprocess.run([sys.executable, "-m", "render.preview"], input=json.dumps(request).encode(),
                              capture_output=True, timeout=timeout, cwd=PROJECT_DIR, check=False)
    except subprocess.TimeoutExpired:
        raise PreviewTimeoutError(f"the preview of {product_id} took longer than {timeout:g} s and was stopped; "
                                  f"the template may loop or the data may be too large") from None
    if done.returncode == 0:
        return done.stdout
    raise _error_from(done.returncode, done.stderr, product_id, timeout)


def _error_from(status: int, stderr: bytes, product_id: str, timeout: float) -> RenderError:
    try:
        error = json.loads(stderr.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        error = None
    if status == TEMPLATE_ERROR and isinstance(error, dict):
        return TemplateError(error["message"], file=error["file"], line=error.get("line"),
                             column=error.get("column"), hints=error.get("hints"))
    if status == DATA_ERROR and isinstance(error, dict):
        return RenderError(error["message"], error.get("errors"))
    if status < 0:  # killed by a signal: the CPU or memory limit
        return PreviewTimeoutError(f"the preview of {product_id} went past its limits ({timeout:g} s of CPU, "
                                   f"{MEMORY_LIMIT // 1024**3} GiB of memory) and was stopped")
    return RenderError(f"the preview of {product_id} failed (status {status})")


def _context_json(context: ReportContext) -> dict[str, Any]:
    values = {f.name: getattr(context, f.name) for f in dataclasses.fields(context)}
    values["logo_file"] = str(context.logo_file) if context.logo_file else None
    return values


def _run_child(request: dict[str, Any]) -> bytes:
    """The child's work: load the one product and render the data."""
    context_values = request["context"]
    logo = context_values.pop("logo_file")
    context = ReportContext(**context_values, logo_file=Path(logo) if logo else None)
    templates_dir = Path(request["templates_dir"]) if request["templates_dir"] else None
    template = load_product(request["product_id"], templates_dir, context)
    return template.render(request["data"], job_id=None)


def main() -> int:
    """Child entry point: limit this process, render, write the PDF or the error."""
    request = json.loads(sys.stdin.buffer.read())
    cpu_seconds = int(request["timeout"]) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    try:
        pdf = _run_child(request)
    except TemplateError as exc:
        sys.stderr.write(json.dumps(exc.location()) + "\n")
        return TEMPLATE_ERROR
    except RenderError as exc:
        sys.stderr.write(json.dumps({"message": exc.message, "errors": exc.errors}) + "\n")
        return DATA_ERROR
    sys.stdout.buffer.write(pdf)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
