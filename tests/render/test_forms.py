"""Fillable PDF form templates: filling from a JSON mapping, flattened or editable, in the report fonts."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from reportlab.pdfgen.canvas import Canvas

from render import BrokenTemplateError, FormTemplate, RenderError, fill_form, load_registry
from render.form_mapping import pdf_values
from render.forms.make_sample_form import build
from render.registry import BUILTIN_FORMS_DIR
from tests.render.pdfs import NAME, assert_every_font_embedded, flat, page_texts

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "formulirPersetujuan.json"
EXPECTED_TEXT = {
    "nama_peserta": "Siti Nurhaliza Rahmawati", "tanggal_lahir": "14/03/2008", "usia": "17",
    "sekolah": "SMA Negeri 3 Yogyakarta", "nama_wali": "Budi Santoso", "hubungan_wali": "Ayah",
    "telepon_wali": "0812-2745-9031", "tanggal_tes": "12/01/2026", "kota": "Yogyakarta",
    "tanggal_tanda_tangan": "10/01/2026",
}


@pytest.fixture
def data() -> dict[str, Any]:
    return copy.deepcopy(json.loads(EXAMPLE.read_text(encoding="utf-8"))["data"])


@pytest.fixture(scope="module")
def form() -> FormTemplate:
    found = load_registry().get("formulirPersetujuan")
    assert isinstance(found, FormTemplate)
    return found


def editable(form: FormTemplate) -> FormTemplate:
    return dataclasses.replace(form, mapping=form.mapping.model_copy(update={"flatten": False}))


def make_form(path: Path, value: str = "") -> None:
    """A one-page form with a text field, a checkbox and an unmapped pre-filled field."""
    canvas = Canvas(str(path))
    canvas.drawString(50, 800, "Custom form")
    canvas.acroForm.textfield(name="full_name", x=50, y=700, width=200, height=20)
    canvas.acroForm.checkbox(name="agree", x=50, y=650, size=14, fieldFlags="")
    canvas.acroForm.textfield(name="office_use", value=value, x=50, y=600, width=200, height=20)
    canvas.showPage()
    canvas.save()


def write_custom(directory: Path, name: str = "customForm", **mapping: Any) -> None:
    make_form(directory / f"{name}.pdf", value="FIXED-42")
    fields = {"full_name": {"path": "person.name", "type": "text", "required": True},
              "agree": {"path": "agree", "type": "checkbox"}}
    (directory / f"{name}.json").write_text(json.dumps({"title": "Custom", "fields": fields} | mapping))


def test_form_is_flattened_by_default_and_shows_every_value(form, data):
    assert form.mapping.flatten is True
    pdf = form.render(data)
    reader = PdfReader(io.BytesIO(pdf))
    assert not reader.get_fields() and "/AcroForm" not in reader.trailer["/Root"]
    assert not [a for a in reader.pages[0].get("/Annots") or [] if a.get_object()["/Subtype"] == "/Widget"]
    text = reader.pages[0].extract_text()
    for value in EXPECTED_TEXT.values():
        assert value in text
    assert_every_font_embedded(pdf)


def test_form_flattened_unicode_name_extracts_back_exactly(form, data):
    data["participant"]["name"] = NAME
    pdf = form.render(data)
    assert NAME in page_texts(pdf)[0].splitlines()
    assert_every_font_embedded(pdf)


def test_renders_cloned_from_the_kept_parse_leave_it_unchanged(form, data):
    """The parsed form is shared by every render of the template: a render must not change what the next
    one clones (the same data gives the same bytes as a render from a fresh parse, after other renders)."""
    other = copy.deepcopy(data)
    other["participant"]["name"] = NAME
    on_values = form.mapping.on_values()
    first = form.render(data)
    # editable: sets field values and appearances in its clone of the same parse
    fill_form(form.parsed, pdf_values(form.mapping, other), on_values, flatten=False, typesetting=form.typesetting)
    form.render(other)
    fresh = fill_form(form.pdf, pdf_values(form.mapping, data), on_values, typesetting=form.typesetting)
    assert form.render(data) == first == fresh


def test_form_has_no_developer_text(form, data):
    text = flat(page_texts(form.render(data))[0])
    assert "make_sample_form" not in text and ".py" not in text and "workers/" not in text


def test_form_editable_keeps_fields_with_values(form, data):
    reader = PdfReader(io.BytesIO(editable(form).render(data)))
    assert reader.get_form_text_fields() == EXPECTED_TEXT
    fields = reader.get_fields()
    assert set(fields) == set(form.mapping.fields)
    assert fields["setuju_tes"]["/V"] == "/Yes" and fields["setuju_data"]["/V"] == "/Yes"
    assert fields["setuju_sekolah"]["/V"] == "/Off"
    states = {a["/T"]: a["/AS"] for a in (x.get_object() for x in reader.pages[0]["/Annots"]) if "/AS" in a}
    assert states == {"setuju_tes": "/Yes", "setuju_data": "/Yes", "setuju_sekolah": "/Off"}


def test_form_editable_unicode_value_is_drawn_in_embedded_fonts(form, data):
    data["participant"]["name"] = NAME
    pdf = editable(form).render(data)
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.get_form_text_fields()["nama_peserta"] == NAME
    name_widget = next(a.get_object() for a in reader.pages[0]["/Annots"] if a.get_object()["/T"] == "nama_peserta")
    appearance = name_widget["/AP"]["/N"].get_object()
    used = " ".join(str(f.get_object()["/BaseFont"]) for f in appearance["/Resources"]["/Font"].values())
    assert "NotoSans-Regular" in used and "NotoSansArabic-Regular" in used and "NotoSansCJKsc-Regular" in used
    assert_every_font_embedded(pdf)


def test_form_characters_no_font_has_are_refused(form, data):
    data["guardian"]["name"] = "Budi 🎉"
    assert [e["field"] for e in form.validate(data)] == ["data.guardian.name"]


def test_form_optional_fields_may_be_missing(form, data):
    del data["participant"]["school"], data["signed"], data["consent"]["process_data"]
    fields = PdfReader(io.BytesIO(editable(form).render(data))).get_fields()
    assert fields["sekolah"].get("/V", "") == "" and fields["setuju_data"]["/V"] == "/Off"


def test_form_date_accepts_iso_datetime(form, data):
    data["test_date"] = "2026-01-12T08:30:00+07:00"
    assert PdfReader(io.BytesIO(editable(form).render(data))).get_form_text_fields()["tanggal_tes"] == "12/01/2026"


def test_form_validate_sample_is_valid(form, data):
    assert form.validate(data) == []


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda d: d["participant"].pop("name"), "data.participant.name", "is required"),
        (lambda d: d["participant"].update(name=" "), "data.participant.name", "must not be empty"),
        (lambda d: d["participant"].update(name=7), "data.participant.name", "must be a string"),
        (lambda d: d.update(test_date="12/01/2026"), "data.test_date", "must be a date (YYYY-MM-DD)"),
        (lambda d: d["consent"].update(take_test="yes"), "data.consent.take_test", "must be true or false"),
        (lambda d: d["participant"].update(age=250), "data.participant.age", "must be at most 100"),
        (lambda d: d["participant"].update(age="17"), "data.participant.age", "must be a number"),
        (lambda d: d.update(guardian="Budi"), "data.guardian", "must be an object"),
        (lambda d: d["guardian"].update(phone="0" * 31), "data.guardian.phone", "must be at most 30 characters"),
    ],
)
def test_form_validate_names_the_field(form, data, change, field, message):
    change(data)
    assert form.validate(data) == [{"field": field, "message": message}]


def test_form_render_invalid_data_raises_render_error(form, data):
    del data["guardian"]
    with pytest.raises(RenderError, match=r"data\.guardian\.name: is required"):
        form.render(data)


def test_form_schema_derived_from_mapping(form):
    schema = form.schema()
    assert set(schema["required"]) == {"participant", "guardian", "test_date", "consent"}
    participant = schema["properties"]["participant"]
    assert participant["required"] == ["name", "birth_date"]
    assert participant["properties"]["birth_date"] == {"type": "string", "format": "date"}
    assert schema["properties"]["consent"]["properties"]["take_test"]["type"] == "boolean"
    assert "required" not in schema["properties"]["signed"]


def test_form_progress_reported(form, data):
    calls: list[int] = []
    form.render(data, lambda percent, _message: calls.append(percent))
    assert calls[-1] == 100


def test_sample_form_script_builds_the_checked_in_pdf(tmp_path):
    built = build(tmp_path / "form.pdf")
    assert built.read_bytes() == (BUILTIN_FORMS_DIR / "formulirPersetujuan.pdf").read_bytes()


def test_templates_dir_custom_form_is_loaded_and_filled(tmp_path):
    write_custom(tmp_path, flatten=False)
    registry = load_registry(tmp_path)
    assert registry is load_registry(str(tmp_path))
    template = registry.get("customForm")
    assert {"minatBakatUmum", "formulirPersetujuan", "customForm"} <= {t.product_id for t in registry.all()}
    reader = PdfReader(io.BytesIO(template.render({"person": {"name": "Ana & <Co>"}, "agree": True})))
    assert reader.get_form_text_fields()["full_name"] == "Ana & <Co>"
    assert reader.get_fields()["agree"]["/V"] == "/Yes"
    assert "customForm" not in load_registry()


def test_templates_dir_flatten_keeps_unmapped_field_values(tmp_path):
    write_custom(tmp_path)
    pdf = load_registry(tmp_path).get("customForm").render({"person": {"name": "Rina"}, "agree": False})
    reader = PdfReader(io.BytesIO(pdf))
    assert not reader.get_fields()
    text = reader.pages[0].extract_text()
    assert "Rina" in text and "FIXED-42" in text


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({"fields": {"missing_field": {"path": "a"}}}, "'missing_field' is not in the PDF"),
        ({"fields": {"agree": {"path": "a", "type": "text"}}}, "'agree' is /Btn in the PDF but mapped as text"),
        ({"fields": {"agree": {"path": "a", "type": "checkbox", "on_value": "/On"}}}, "has no state /On"),
        ({"fields": {"full_name": {"path": "a b"}}}, "mapping.fields.full_name.path"),
        ({"fields": {"full_name": {"path": "a", "type": "colour"}}}, "mapping.fields.full_name.type"),
        ({"fields": {"full_name": {"path": "a"}, "office_use": {"path": "a.b"}}}, "both a value and a parent"),
        ({"fields": {"full_name": {"path": "n", "type": "number", "format": "zz"}}}, "full_name"),
        ({"fields": {"full_name": {"path": "a", "required": True}}, "example": {}}, "example data.a: is required"),
    ],
)
def test_templates_dir_broken_mapping_is_listed_and_others_keep_working(tmp_path, mapping, expected):
    make_form(tmp_path / "brokenForm.pdf")
    (tmp_path / "brokenForm.json").write_text(json.dumps({"title": "Broken"} | mapping))
    write_custom(tmp_path)
    registry = load_registry(tmp_path)
    [broken] = registry.broken()
    assert broken.product_id == "brokenForm" and broken.file == "brokenForm.json" and expected in broken.reason
    with pytest.raises(BrokenTemplateError, match="brokenForm.json") as info:
        registry.get("brokenForm")
    assert expected in str(info.value)
    assert {"minatBakatUmum", "formulirPersetujuan", "customForm"} <= {t.product_id for t in registry.all()}
    registry.get("customForm").render({"person": {"name": "Rina"}})


def test_templates_dir_mapping_without_pdf_and_bad_json(tmp_path):
    (tmp_path / "noPdf.json").write_text(json.dumps({"title": "x", "fields": {"a": {"path": "a"}}}))
    (tmp_path / "badJson.json").write_text("{not json")
    make_form(tmp_path / "badJson.pdf")
    reasons = {b.product_id: b.reason for b in load_registry(tmp_path).broken()}
    assert set(reasons) == {"noPdf", "badJson"}
    assert "noPdf.pdf" in reasons["noPdf"] and "badJson.json" in reasons["badJson"]


def test_templates_dir_form_replaces_the_builtin_of_the_same_id(tmp_path):
    write_custom(tmp_path, name="formulirPersetujuan")
    assert load_registry(tmp_path).get("formulirPersetujuan").title == "Custom"
