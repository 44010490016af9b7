"""Tests of the minatBakatUmum report template and the template registry."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from render import MinatBakatTemplate, RenderError, UnknownTemplateError, load_registry

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "minatBakatUmum.json"


@pytest.fixture(scope="module")
def body() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture
def data(body: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(body["data"])


@pytest.fixture(scope="module")
def template() -> MinatBakatTemplate:
    found = load_registry().get("minatBakatUmum")
    assert isinstance(found, MinatBakatTemplate)
    return found


def pdf_text(pdf: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def minimal() -> dict[str, Any]:
    return {"participant": {"name": "Andi"}, "test_date": "2026-01-15", "scales": [{"name": "Verbal", "score": 55}]}


def test_render_example_has_pages_code_name_scales_and_page_numbers(template, body, data):
    pages, text = pdf_text(template.render(data, code=body["code"]))
    assert pages >= 2
    assert body["code"] in text
    assert data["participant"]["name"] in text
    for scale in data["scales"]:
        assert scale["name"] in text
    assert f"Halaman 1 dari {pages}" in text and f"Halaman {pages} dari {pages}" in text
    assert "Minat Bakat Umum" in text


def test_render_english_labels_and_page_numbers(template, data):
    data["language"] = "en"
    pages, text = pdf_text(template.render(data, code="abc123"))
    assert f"Page 1 of {pages}" in text and f"Page 2 of {pages}" in text
    assert "Scale Scores" in text and "Report date" in text


def test_render_header_on_every_page(template, data):
    reader = PdfReader(io.BytesIO(template.render(data, code="HDR-CODE-1")))
    for page in reader.pages:
        page_text = page.extract_text()
        assert "HDR-CODE-1" in page_text and "12 Januari 2026" in page_text


def test_render_code_from_data_when_not_passed(template):
    data = minimal() | {"code": "fromData42"}
    assert "fromData42" in pdf_text(template.render(data))[1]


def test_render_minimal_data_still_two_pages_with_generated_texts(template):
    pages, text = pdf_text(template.render(minimal(), code="x"))
    assert pages == 2
    assert "Sedang" in text  # category derived from score 55
    assert "Skor Verbal berada pada kategori Sedang" in text  # generated narrative
    assert "Ringkasan" in text


def test_render_reports_progress_in_order(template, data):
    calls: list[tuple[int, str]] = []
    template.render(data, lambda percent, message: calls.append((percent, message)))
    percents = [p for p, _ in calls]
    assert percents == sorted(percents) and percents[-1] == 100 and len(calls) >= 3


def test_render_escapes_paragraph_markup_in_user_text(template):
    data = minimal()
    data["participant"]["name"] = "Budi <b>& Co</i>"
    data["scales"][0] |= {"name": "A&B <x>", "description": "Uses <br> & <font> tags & more"}
    data |= {"summary": "5 < 6 & 7 > 3", "recommendations": ["<para>Try & see</para>"]}
    _, text = pdf_text(template.render(data, code="<b>&"))
    for expected in ("Budi <b>& Co</i>", "A&B <x>", "Uses <br> & <font> tags", "5 < 6 & 7 > 3", "<para>Try & see"):
        assert expected in text


def test_render_non_latin_text_does_not_fail(template):
    data = minimal()
    data["participant"]["name"] = "Nguyễn 王小明 Zoë"
    _, text = pdf_text(template.render(data))
    assert "Nguyen" in text and "Zoë" in text


def test_render_thirty_scales_with_long_texts(template):
    data = minimal()
    data["participant"] |= {"name": "N" * 120, "school": "S" * 120}
    data["scales"] = [{"name": f"Skala nomor {i} " + "x" * 45, "score": i * 3.3, "raw_score": i,
                       "description": "kata " * 400} for i in range(30)]
    data["recommendations"] = ["r" * 400] * 20
    pages, text = pdf_text(template.render(data))
    assert pages >= 4 and f"Halaman {pages} dari {pages}" in text


def test_validate_example_is_valid(template, data):
    assert template.validate(data) == []


def test_validate_missing_scales_names_the_field(template, data):
    del data["scales"]
    assert template.validate(data) == [{"field": "data.scales", "message": "is required"}]


def test_validate_score_out_of_range_names_the_index(template, data):
    data["scales"][2]["score"] = 150
    assert template.validate(data) == [{"field": "data.scales[2].score", "message": "must be a number from 0 to 100"}]


@pytest.mark.parametrize("value", ["80", True, None, [1]])
def test_validate_score_wrong_type(template, data, value):
    data["scales"][0]["score"] = value
    errors = template.validate(data)
    assert [e["field"] for e in errors] == ["data.scales[0].score"]
    assert "number" in errors[0]["message"]


def test_validate_empty_name(template, data):
    data["participant"]["name"] = "   "
    assert template.validate(data) == [{"field": "data.participant.name", "message": "must not be empty"}]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scales": []}, "data.scales"),
        ({"scales": [{"name": "x", "score": 1}] * 31}, "data.scales"),
        ({"test_date": "15/01/2026"}, "data.test_date"),
        ({"language": "fr"}, "data.language"),
        ({"participant": "Andi"}, "data.participant"),
        ({"recommendations": "read more"}, "data.recommendations"),
    ],
)
def test_validate_other_errors_name_the_field(template, change, field):
    errors = template.validate(minimal() | change)
    assert [e["field"] for e in errors] == [field]


@pytest.mark.parametrize("data", [None, [], "text", 3])
def test_validate_non_object_data(template, data):
    assert template.validate(data) == [{"field": "data", "message": "must be an object"}]


def test_render_invalid_data_raises_render_error_with_field_errors(template, data):
    data["scales"][0]["score"] = 150
    with pytest.raises(RenderError, match=r"data\.scales\[0\]\.score: must be a number from 0 to 100") as info:
        template.render(data)
    assert info.value.errors == [{"field": "data.scales[0].score", "message": "must be a number from 0 to 100"}]


def test_schema_comes_from_the_model(template):
    schema = template.schema()
    assert set(schema["required"]) == {"participant", "test_date", "scales"}
    assert schema["properties"]["scales"]["maxItems"] == 30
    assert schema["$defs"]["Scale"]["properties"]["score"]["maximum"] == 100


def test_registry_unknown_product_lists_known_ids():
    with pytest.raises(UnknownTemplateError, match="minatBakatUmum") as info:
        load_registry().get("noSuchProduct")
    assert isinstance(info.value, RenderError)
    assert "noSuchProduct" in str(info.value)


def test_registry_lists_builtins_and_is_cached():
    registry = load_registry()
    assert registry is load_registry()
    assert {t.product_id for t in registry.all()} >= {"minatBakatUmum", "formulirPersetujuan"}
    assert {t.kind for t in registry.all()} == {"report", "form"}
    assert registry.get("minatBakatUmum").describe()["schema"]["type"] == "object"


def test_warm_up_renders_its_own_valid_two_page_report(template, monkeypatch):
    from render.minat_bakat import _WARM_UP_DATA

    assert template.validate(_WARM_UP_DATA) == []
    rendered = []
    original = MinatBakatTemplate.render
    monkeypatch.setattr(MinatBakatTemplate, "render", lambda self, *a, **k: rendered.append(original(self, *a, **k)))
    template.warm_up()
    [pdf] = rendered
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 2
