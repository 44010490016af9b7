"""Fillable PDF form templates: a `<productId>.pdf` AcroForm filled with pypdf from `<productId>.json`."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError
from pypdf.generic import DictionaryObject, IndirectObject, NameObject

from render.base import (
    Progress,
    RenderError,
    Template,
    invalid_data_error,
    report_progress,
)
from render.form_mapping import FormMapping, data_schema, pdf_values, validate_values
from render.validation import field_path

PRODUCT_ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class FormTemplate(Template):
    """A fillable PDF form; the PDF bytes are held in memory and cloned per render."""

    product_id: str
    title: str
    mapping: FormMapping = field(repr=False)
    pdf: bytes = field(repr=False)
    kind: str = "form"

    def schema(self) -> dict[str, Any]:
        """Return the JSON Schema of the form's data, derived from the mapping."""
        return data_schema(self.mapping, f"{self.product_id} data")

    def validate(self, data: object) -> list[dict[str, str]]:
        """Return the field errors of `data` (empty when valid)."""
        return validate_values(self.mapping, data)

    def render(self, data: dict[str, Any], progress: Progress | None = None, *, code: str | None = None) -> bytes:
        """Validate `data`, fill the form and return the PDF (flattened when the mapping says so)."""
        errors = self.validate(data)
        if errors:
            raise invalid_data_error(self.product_id, errors)
        report_progress(progress, 10, "data validated")
        try:
            pdf = fill_form(self.pdf, pdf_values(self.mapping, data), flatten=self.mapping.flatten)
        except (PyPdfError, KeyError, ValueError) as exc:
            raise RenderError(f"form template {self.product_id} could not be filled: {exc}") from exc
        report_progress(progress, 100, "form filled")
        return pdf


def fill_form(pdf: bytes, values: dict[str, str], *, flatten: bool = False) -> bytes:
    """Fill AcroForm fields by name; flattening draws the values into the pages and drops the form."""
    writer = PdfWriter(clone_from=io.BytesIO(pdf))
    if flatten:
        values = _keep_unmapped_values(writer, values)
    writer.update_page_form_field_values(None, values, auto_regenerate=False, flatten=flatten)
    if flatten:
        writer.remove_annotations(subtypes="/Widget")
        del writer.root_object[NameObject("/AcroForm")]
    else:
        writer.set_need_appearances_writer(True)  # viewers redraw text fields with their own fonts
        _ensure_zapf_dingbats(writer)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _ensure_zapf_dingbats(writer: PdfWriter) -> None:
    """Viewers that redraw checkboxes use /ZaDb from the form's /DR: make sure it is there."""
    acro_form = writer.root_object["/AcroForm"].get_object()
    resources = acro_form.setdefault(NameObject("/DR"), DictionaryObject()).get_object()
    fonts = resources.setdefault(NameObject("/Font"), DictionaryObject()).get_object()
    if "/ZaDb" not in fonts:
        font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                                 NameObject("/BaseFont"): NameObject("/ZapfDingbats")})
        fonts[NameObject("/ZaDb")] = new_indirect_object(writer, font)


def new_indirect_object(writer: PdfWriter, obj: DictionaryObject) -> IndirectObject:
    """Add `obj` to `writer` as a new indirect object and return its reference.

    pypdf has no public add_object; its public `clone()` adds an object that has an
    `indirect_reference` attribute as a new indirect object (None: it is in no file yet).
    """
    obj.indirect_reference = None
    return obj.clone(writer).indirect_reference


def _keep_unmapped_values(writer: PdfWriter, values: dict[str, str]) -> dict[str, Any]:
    """Add the fields the mapping leaves alone, so flattening keeps what they already show."""
    merged: dict[str, Any] = dict(values)
    for name, info in (writer.get_fields() or {}).items():
        if name not in merged:
            merged[name] = str(info.get("/V", "/Off")) if info.get("/FT") == "/Btn" else None
    return merged


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


def load_form(mapping_path: Path) -> FormTemplate:
    """Load `<productId>.json` and its `<productId>.pdf`; raise RenderError naming every problem."""
    product_id, pdf_path = mapping_path.stem, mapping_path.with_suffix(".pdf")
    if not PRODUCT_ID_PATTERN.match(product_id):
        raise RenderError(f"{mapping_path}: file name must be a product id (letters, digits, _ or -)")
    try:
        raw = json.loads(mapping_path.read_text(encoding="utf-8"))
        mapping = FormMapping.model_validate(raw)
        pdf = pdf_path.read_bytes()
        problems = _pdf_problems(PdfReader(io.BytesIO(pdf)), mapping)
    except ValidationError as exc:
        found = "; ".join(f"{field_path(e['loc'], prefix='mapping')}: {e['msg']}" for e in exc.errors())
        raise RenderError(f"{mapping_path}: invalid mapping: {found}") from None
    except (OSError, ValueError, PyPdfError) as exc:
        raise RenderError(f"{mapping_path}: cannot load form template: {exc}") from exc
    if problems:
        raise RenderError(f"{mapping_path}: mapping does not match {pdf_path.name}: {'; '.join(problems)}")
    return FormTemplate(product_id=product_id, title=mapping.title, mapping=mapping, pdf=pdf)
