"""A genuinely large fillable form (2,000 pages, flattened) for end-to-end tests that need a job to run
for a few seconds: cancel while running, live progress. It is an ordinary form template served from a
test-only TEMPLATES_DIR; production code has no test switch or artificial delay."""

from __future__ import annotations

import json
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

PRODUCT_ID = "slowForm"
PAGES = 2000  # about 4 s to fill and flatten on a 2020s laptop core; the tests only need "a while"
DATA = {"name": "Siti Nurhaliza"}


def write_slow_form(directory: Path) -> Path:
    """Write slowForm.pdf and slowForm.json into `directory` and return it."""
    canvas = Canvas(str(directory / f"{PRODUCT_ID}.pdf"), pagesize=A4, invariant=True)
    for page in range(PAGES):
        canvas.drawString(50, 800, f"Lembar jawaban {page + 1} dari {PAGES}")
        canvas.acroForm.textfield(name=f"line_{page}", x=50, y=700, width=300, height=18)
        canvas.showPage()
    canvas.save()
    mapping = {"title": "Large answer sheet (tests)", "flatten": True,
               "fields": {"line_0": {"path": "name", "required": True, "max_length": 120}}}
    (directory / f"{PRODUCT_ID}.json").write_text(json.dumps(mapping))
    return directory
