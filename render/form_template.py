"""Fillable PDF form templates: a `<productId>.pdf` AcroForm filled from `<productId>.json` (the mapping).

Values are drawn in the report fonts (render/form_overlay.py), so names in any script show as sent.
Filled forms are flattened unless the mapping says `"flatten": false`.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError

from render.base import (
    Progress,
    RenderError,
    Template,
    TemplateError,
    report_progress,
)
from render.fonts import uncovered_text_errors
from render.form_mapping import FormMapping, data_schema, pdf_values, validate_values
from render.form_overlay import fill_editable, flatten_onto_pages
from render.typst_template import Typesetting
from render.validation import field_path

PRODUCT_ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class FormTemplate(Template):
    """A fillable PDF form; the PDF is parsed once and cloned per render."""

    product_id: str
    title: str
    mapping: FormMapping = field(repr=False)
    pdf: bytes = field(repr=False)
    typesetting: Typesetting = field(default_factory=Typesetting, repr=False)
    kind: str = "form"

    def schema(self) -> dict[str, Any]:
        """Return the JSON Schema of the form's data, derived from the mapping."""
        return data_schema(self.mapping, f"{self.product_id} data")

    def validate(self, data: object) -> list[dict[str, str]]:
        """Return the field errors of `data`, then its characters no font can show (empty when valid)."""
        errors = validate_values(self.mapping, data)
        if errors or not isinstance(data, dict):
            return errors
        drawn = {f"data.{spec.path}" for spec in self.mapping.fields.values() if spec.type == "text"}
        return [e for e in uncovered_text_errors(data, self.typesetting.coverage) if e["field"] in drawn]

    def sample(self) -> dict[str, Any] | None:
        """The mapping's `example` data, if it has one (what a preview renders when given none)."""
        return self.mapping.example

    @cached_property
    def parsed(self) -> PdfReader:
        """The form PDF parsed once, every object read: each render clones it without parsing it again.

        The warm-up clone resolves every object that a render's clone reaches, so later clones only read
        the reader's cache (never its stream, which concurrent renders would share); pypdf's clone copies
        what it takes into the writer and leaves the reader as it was (tests/render/test_forms.py).
        """
        reader = PdfReader(io.BytesIO(self.pdf))
        PdfWriter(clone_from=reader)
        return reader

    def render(self, data: dict[str, Any], progress: Progress | None = None, *, code: str | None = None,
               job_id: str | None = None) -> bytes:
        """Validate `data`, fill the form and return the PDF (flattened unless the mapping says otherwise)."""
        self.check_data(data, progress)
        values = pdf_values(self.mapping, data)
        try:
            pdf = fill_form(self.parsed, values, self.mapping.on_values(), flatten=self.mapping.flatten,
                            typesetting=self.typesetting)
        except (PyPdfError, KeyError, ValueError) as exc:
            raise RenderError(f"form template {self.product_id} could not be filled: {exc}") from exc
        report_progress(progress, 100, "form filled")
        return pdf


def fill_form(pdf: bytes | PdfReader, values: dict[str, str], on_values: dict[str, str] | None = None, *,
              flatten: bool = True, typesetting: Typesetting | None = None) -> bytes:
    """Fill AcroForm fields by name (checkbox values are state names such as /Yes or /Off) of the form `pdf`
    (its bytes, or a reader of them to clone, which stays unchanged).

    Flattening draws every field into its page and removes the form; otherwise the fields keep the
    values and show them with appearances drawn in the report fonts.
    """
    fonts = (typesetting or Typesetting()).fonts
    on_values = on_values or {}
    shown: dict[str, str | bool] = {name: (value != "/Off") if name in on_values else value
                                    for name, value in values.items()}
    writer = PdfWriter(clone_from=pdf if isinstance(pdf, PdfReader) else io.BytesIO(pdf))
    if flatten:
        flatten_onto_pages(writer, fonts, shown)
    else:
        fill_editable(writer, fonts, shown, on_values)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _pdf_problems(reader: PdfReader, mapping: FormMapping) -> list[str]:
    """Check that every mapped field exists in the PDF with a matching type and on-value."""
    fields = reader.get_fields() or {}
    problems = []
    for name, spec in mapping.fields.items():
        info = fields.get(name)
        if info is None:
            problems.append(f"field {name!r} is not in the PDF (it has: {', '.join(sorted(fields)) or 'none'})")
        elif (info.get("/FT") == "/Btn") != (spec.type == "checkbox"):
            problems.append(f"field {name!r} is {info.get('/FT')} in the PDF but mapped as {spec.type}")
        elif spec.type == "checkbox" and spec.on_value not in (info.get("/_States_") or [spec.on_value]):
            problems.append(f"checkbox {name!r} has no state {spec.on_value} (states: {info.get('/_States_')})")
    return problems


def load_form(mapping_path: Path, typesetting: Typesetting | None = None) -> FormTemplate:
    """Load `<productId>.json` and its `<productId>.pdf`; raise TemplateError naming every problem."""
    product_id, pdf_path = mapping_path.stem, mapping_path.with_suffix(".pdf")
    name = mapping_path.name
    if not PRODUCT_ID_PATTERN.match(product_id):
        raise TemplateError(f"{name}: file name must be a product id (letters, digits, _ or -)", file=name)
    try:
        raw = json.loads(mapping_path.read_text(encoding="utf-8"))
        mapping = FormMapping.model_validate(raw)
        pdf = pdf_path.read_bytes()
        problems = _pdf_problems(PdfReader(io.BytesIO(pdf)), mapping)
    except ValidationError as exc:
        found = "; ".join(f"{field_path(e['loc'], prefix='mapping')}: {e['msg']}" for e in exc.errors())
        raise TemplateError(f"{name}: invalid mapping: {found}", file=name) from None
    except FileNotFoundError as exc:
        raise TemplateError(f"{name}: cannot load form template: {exc.strerror}: {Path(exc.filename).name}",
                            file=name) from None
    except (OSError, ValueError, PyPdfError) as exc:
        raise TemplateError(f"{name}: cannot load form template: {exc}", file=name) from exc
    if mapping.example is not None:
        problems += [f"example {e['field']}: {e['message']}" for e in validate_values(mapping, mapping.example)]
    if problems:
        raise TemplateError(f"{name}: mapping does not match {pdf_path.name}: {'; '.join(problems)}", file=name)
    return FormTemplate(product_id=product_id, title=mapping.title, mapping=mapping, pdf=pdf,
                        typesetting=typesetting or Typesetting())
