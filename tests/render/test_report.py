"""The built-in minatBakatUmum report (a Typst template): content, Unicode, layout of real data, validation."""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pypdf import PdfReader

from render import RenderError, ReportContext, TypstTemplate, build_registry, load_registry
from tests.render.pdfs import NAME, assert_every_font_embedded, flat, fonts, page_texts

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "minatBakatUmum.json"
SECTION_HEADINGS = ("Data Peserta", "Skor Skala", "Uraian per Skala", "Ringkasan", "Rekomendasi")


@pytest.fixture(scope="module")
def body() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture
def data(body: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(body["data"])


@pytest.fixture(scope="module")
def template() -> TypstTemplate:
    found = load_registry().get("minatBakatUmum")
    assert isinstance(found, TypstTemplate)
    return found


def minimal() -> dict[str, Any]:
    return {"participant": {"name": "Andi"}, "test_date": "2026-01-15", "scales": [{"name": "Verbal", "score": 55}]}


def long_scales(count: int) -> list[dict[str, Any]]:
    """`count` scales whose names are 80 characters and differ only near their end."""
    scales = []
    for number in range(1, count + 1):
        name = f"Kemampuan Penalaran Abstrak dan Pemecahan Masalah Kompleks Tingkat Lanjut {number:02d}"
        scales.append({"name": (name + " Akhir")[:80], "score": (number * 37) % 101, "raw_score": number})
    return scales


def test_example_is_two_pages_with_every_scale_code_and_document_number(template, body, data):
    texts = page_texts(template.render(data, code=body["code"], job_id="job-3f2a9c1e"))
    text = flat("\n".join(texts))
    assert len(texts) == 2
    assert body["code"] in text and data["participant"]["name"] in text
    for scale in data["scales"]:
        assert scale["name"] in text
    assert "Halaman 1 dari 2" in text and "Halaman 2 dari 2" in text
    assert "No. dokumen job-3f2a9c1e" in flat(texts[0]) and "job-3f2a9c1e" in flat(texts[1])


def test_renders_in_one_process_each_carry_their_own_number_name_and_title(template, data):
    # Typst reuses the layout of what renders share (report() keeps per-render values out of its set
    # rules for that): nothing of one render may show in the next.
    for number, name in (("job-first", "Ayu Lestari"), ("job-second", "Bima Sakti"), ("job-first", "Citra Dewi")):
        data["participant"]["name"] = name
        pdf = template.render(data, code="c-1", job_id=number)
        texts = [flat(text) for text in page_texts(pdf)]
        assert all(f"No. dokumen {number}" in text for text in texts) and name in texts[0]
        assert PdfReader(io.BytesIO(pdf)).metadata.title == f"Laporan Hasil Tes Minat dan Bakat - {name}"
        other = {"job-first": "job-second", "job-second": "job-first"}[number]
        assert not any(other in text for text in texts)


def test_report_has_a_guide_confidentiality_notice_and_signature_block(template, data):
    text = flat("\n".join(page_texts(template.render(data, job_id="j1"))))
    assert "Cara membaca kategori" in text and "di bawah 40" in text and "70 ke atas" in text
    assert "RAHASIA" in text and "Laporan ini bersifat rahasia" in text
    assert "Psikolog pemeriksa" in text and "Tanda tangan" in text


def test_letterhead_and_psychologist_from_the_context(tmp_path, data):
    logo = tmp_path / "logo.png"
    Image.new("RGB", (64, 64), (31, 78, 121)).save(logo)
    context = ReportContext(organization_name="Biro Psikologi Cahaya", organization_address="Jl. Kaliurang 5",
                            organization_city="Yogyakarta", logo_file=logo, psychologist_name="Dra. Ratna W.",
                            psychologist_licence="SIPP 1234-21")
    template = build_registry(None, context).get("minatBakatUmum")
    pdf = template.render(data, job_id="j2")
    text = flat("\n".join(page_texts(pdf)))
    assert "Biro Psikologi Cahaya" in text and "Jl. Kaliurang 5" in text
    assert "Dra. Ratna W." in text and "SIPP 1234-21" in text and "Yogyakarta," in text
    [image] = PdfReader(io.BytesIO(pdf)).pages[0].images
    assert image.image.size == (64, 64)


def test_psychologist_in_the_data_signs_instead_of_the_default(template, data):
    data["psychologist"] = {"name": "Budi Hartono, M.Psi.", "licence": "SIPP 9999"}
    text = flat("\n".join(page_texts(template.render(data, job_id="j3"))))
    assert "Budi Hartono, M.Psi." in text and "SIPP 9999" in text


def test_preview_says_preview_instead_of_a_document_number(template, data):
    assert "No. dokumen PRATINJAU" in flat(page_texts(template.render(data, job_id=None))[0])


def test_english_labels(template, data):
    data["language"] = "en"
    text = flat("\n".join(page_texts(template.render(data, job_id="j4"))))
    assert "Page 1 of 2" in text and "Scale Scores" in text and "How to read the categories" in text
    assert "CONFIDENTIAL" in text


def test_unicode_name_extracts_back_exactly_with_every_font_embedded(template):
    data = minimal()
    data["participant"]["name"] = NAME
    pdf = template.render(data, job_id="j5")
    assert NAME in page_texts(pdf)[0]
    assert_every_font_embedded(pdf)
    used = fonts(pdf)
    assert any("NotoSansArabic" in name for name in used) and any("NotoSansCJK" in name for name in used)
    assert all(re.match(r"/[A-Z]{6}\+", name) for name in used)  # subsets, as PDF names them


def test_characters_no_font_has_are_refused_naming_field_and_characters(template):
    data = minimal()
    data["participant"]["name"] = "Andi 🎉"
    data["scales"][0]["description"] = "Baik \U0001f600\U0001f600"
    errors = template.validate(data)
    assert [e["field"] for e in errors] == ["data.participant.name", "data.scales[0].description"]
    assert "'🎉' (U+1F389, PARTY POPPER)" in errors[0]["message"]
    assert errors[1]["message"].count("U+1F600") == 1
    with pytest.raises(RenderError, match="U\\+1F389"):
        template.render(data)


def test_generated_narratives_differ_from_scale_to_scale(template):
    data = minimal()
    data["scales"] = [{"name": f"Skala {n}", "score": 50 + n} for n in range(1, 6)]
    text = flat("\n".join(page_texts(template.render(data, job_id="j6"))))
    assert "Ini skor tertinggi di antara 5 skala" in text and "Ini skor terendah di antara 5 skala" in text
    assert "peringkat 2 dari 5" in text and "peringkat 4 dari 5" in text


def test_forty_scales_with_80_character_names_lay_out_whole(template):
    data = minimal()
    data["participant"]["name"] = NAME
    data["scales"] = long_scales(40)
    data["recommendations"] = [f"Rekomendasi {n}." for n in range(20)]
    texts = page_texts(template.render(data, job_id="j7"))
    whole = flat("\n".join(texts))
    for scale in data["scales"]:  # in the score table (with its bar) and the narrative: wrapped, never cut
        assert whole.count(scale["name"]) >= 2, scale["name"]
    pages = len(texts)
    assert f"Halaman {pages} dari {pages}" in whole


def test_forty_scales_no_heading_is_last_on_its_page(template):
    data = minimal()
    data["scales"] = long_scales(40)
    texts = page_texts(template.render(data, job_id="j8"))
    headings = list(SECTION_HEADINGS[:-1]) + [s["name"] for s in data["scales"]]
    for number, text in enumerate(texts, 1):
        body = flat(text.split("Rahasia: hanya untuk")[0])  # the footer comes last
        for heading in headings:
            at = body.rfind(heading)
            if at >= 0 and heading in SECTION_HEADINGS:
                assert len(body) - (at + len(heading)) > 20, f"{heading!r} is last on page {number}"
        assert not re.search(r": \d+(\.\d)? \((Rendah|Sedang|Tinggi)\)$", body), f"a scale heading ends page {number}"


@pytest.mark.parametrize("count", [1, 2, 7, 13, 24, 31, 40])
def test_any_number_of_scales_renders_with_page_numbers(template, count):
    data = minimal()
    data["scales"] = long_scales(count)
    texts = page_texts(template.render(data, job_id="j9"))
    assert f"Halaman {len(texts)} dari {len(texts)}" in flat(texts[-1])


def test_markup_in_user_text_is_printed_as_text(template):
    data = minimal()
    data["participant"]["name"] = "Budi #set *bold* $x$ <b>&"
    data["scales"][0] |= {"name": "A&B [x] _y_", "description": "Uses #pagebreak() and \\ and // not a comment"}
    text = flat("\n".join(page_texts(template.render(data, job_id="j10"))))
    for expected in ("Budi #set *bold* $x$ <b>&", "A&B [x] _y_", "Uses #pagebreak() and \\ and // not a comment"):
        assert expected in text


def test_progress_is_reported_in_order(template, data):
    calls: list[int] = []
    template.render(data, lambda percent, _message: calls.append(percent), job_id="j11")
    assert calls == sorted(calls) and calls[-1] == 100


def test_example_validates(template, data):
    assert template.validate(data) == []


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda d: d.pop("scales"), "data.scales", "is required"),
        (lambda d: d["scales"][2].update(score=150), "data.scales[2].score", "must be at most 100"),
        (lambda d: d["scales"][0].update(score="80"), "data.scales[0].score", "must be a number"),
        (lambda d: d["scales"][0].update(score=True), "data.scales[0].score", "must be a number"),
        (lambda d: d["participant"].update(name="   "), "data.participant.name", "must not be blank"),
        (lambda d: d["participant"].update(name=""), "data.participant.name", "must not be empty"),
        (lambda d: d.update(scales=[]), "data.scales", "must have at least 1 item(s)"),
        (lambda d: d.update(scales=[{"name": "x", "score": 1}] * 41), "data.scales", "must have at most 40 item(s)"),
        (lambda d: d.update(test_date="15/01/2026"), "data.test_date", "must be a date (YYYY-MM-DD)"),
        (lambda d: d.update(language="fr"), "data.language", "must be one of 'id', 'en'"),
        (lambda d: d.update(participant="Andi"), "data.participant", "must be an object"),
        (lambda d: d["scales"][1].update(name="n" * 81), "data.scales[1].name", "must be at most 80 characters"),
    ],
)
def test_validation_names_the_field(template, data, change, field, message):
    change(data)
    assert template.validate(data) == [{"field": field, "message": message}]


@pytest.mark.parametrize("value", [None, [], "text", 3])
def test_validate_non_object_data(template, value):
    assert template.validate(value) == [{"field": "data", "message": "must be an object"}]


def test_render_invalid_data_raises_render_error_with_field_errors(template, data):
    data["scales"][0]["score"] = 150
    with pytest.raises(RenderError, match=r"data\.scales\[0\]\.score: must be at most 100") as info:
        template.render(data)
    assert info.value.errors == [{"field": "data.scales[0].score", "message": "must be at most 100"}]


def test_schema_is_the_shipped_json_schema(template):
    schema = template.schema()
    assert set(schema["required"]) == {"participant", "test_date", "scales"}
    assert schema["properties"]["scales"]["maxItems"] == 40
    assert schema["properties"]["scales"]["items"]["properties"]["name"]["maxLength"] == 80
    assert template.describe()["title"] == "Minat Bakat Umum"
