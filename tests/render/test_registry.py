"""The registry: products dropped into TEMPLATES_DIR, broken ones listed beside working ones, reloads."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from render import BrokenTemplateError, TemplateCatalog, TypstTemplate, UnknownTemplateError, load_registry
from render.fonts import FONTS_DIR
from render.registry import build_registry
from tests.render.pdfs import assert_every_font_embedded, flat, fonts, page_texts
from tests.render.test_forms import make_form, write_custom

EXAMPLE_TEMPLATES = Path(__file__).resolve().parents[2] / "examples" / "templates"
PRODUCT = "gayaBelajar"


def drop_example(directory: Path, name: str = PRODUCT) -> None:
    """Copy the example product's two files into `directory` under the product id `name`."""
    shutil.copy(EXAMPLE_TEMPLATES / f"{PRODUCT}.typ", directory / f"{name}.typ")
    shutil.copy(EXAMPLE_TEMPLATES / f"{PRODUCT}.schema.json", directory / f"{name}.schema.json")


def test_product_added_by_dropping_two_files(tmp_path):
    drop_example(tmp_path)
    registry = build_registry(tmp_path)
    template = registry.get(PRODUCT)
    assert isinstance(template, TypstTemplate) and template.title == "Gaya Belajar" and template.kind == "report"
    assert {"minatBakatUmum", "formulirPersetujuan", PRODUCT} == {t.product_id for t in registry.all()}
    pdf = template.render(template.sample(), code="c1", job_id="job-42")
    text = flat("\n".join(page_texts(pdf)))
    assert "Rizky Pratama" in text and "Gaya belajar dominan: Visual (78)" in text and "job-42" in text
    assert_every_font_embedded(pdf)
    assert template.validate({"participant": {"name": "x"}}) == [{"field": "data.test_date", "message": "is required"},
                                                                 {"field": "data.styles", "message": "is required"}]


BROKEN_TYPST = [
    ("#let x = (\n", "brokenReport.typ:1", "unclosed delimiter"),
    ('#let (data, meta) = inputs()\n#import "@local/pdfjobs:1.0.0": *\n', "brokenReport.typ:1", "unknown variable"),
    ('#let d = json("/.pdfjobs/input.json").data\n#d.nosuch\n', "brokenReport.typ:2:", "does not contain key"),
    ('#image("missing.png")\n', "brokenReport.typ:1", "file not found"),
]


@pytest.mark.parametrize(("source", "where", "problem"), BROKEN_TYPST)
def test_broken_document_template_is_listed_with_file_line_and_problem(tmp_path, source, where, problem):
    drop_example(tmp_path)
    drop_example(tmp_path, "brokenReport")
    (tmp_path / "brokenReport.typ").write_text(source)
    registry = build_registry(tmp_path)
    [broken] = registry.broken()
    assert broken.product_id == "brokenReport" and broken.file == "brokenReport.typ" and broken.line
    assert where in broken.reason and problem in broken.reason
    with pytest.raises(BrokenTemplateError, match="brokenReport.typ"):
        registry.get("brokenReport")
    registry.get(PRODUCT).render(registry.get(PRODUCT).sample())  # the others keep working


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (None, "has no brokenReport.schema.json"),
        ("{not json", "cannot read it as JSON"),
        (json.dumps({"type": "object", "properties": {"a": {"type": "colour"}}}), "not a valid JSON Schema"),
        (json.dumps({"type": "object"}), "has no `examples`"),
        (json.dumps({"type": "object", "required": ["participant"], "examples": [{}]}),
         "examples[0] does not match the schema: data.participant: is required"),
    ],
)
def test_broken_schema_is_listed_with_the_problem(tmp_path, schema, problem):
    drop_example(tmp_path, "brokenReport")
    if schema is None:
        (tmp_path / "brokenReport.schema.json").unlink()
    else:
        (tmp_path / "brokenReport.schema.json").write_text(schema)
    [broken] = build_registry(tmp_path).broken()
    assert broken.product_id == "brokenReport" and problem in broken.reason


def test_broken_form_and_broken_report_beside_good_ones(tmp_path):
    drop_example(tmp_path)
    write_custom(tmp_path)
    drop_example(tmp_path, "brokenReport")
    (tmp_path / "brokenReport.typ").write_text("#let x = (\n")
    make_form(tmp_path / "brokenForm.pdf")
    (tmp_path / "brokenForm.json").write_text(json.dumps({"title": "B", "fields": {"nope": {"path": "a"}}}))
    registry = build_registry(tmp_path)
    assert [b.product_id for b in registry.broken()] == ["brokenForm", "brokenReport"]
    assert {t.product_id for t in registry.all()} == {"minatBakatUmum", "formulirPersetujuan", PRODUCT, "customForm"}
    for template in registry.all():
        assert template.render(template.sample() or {"person": {"name": "A"}}, job_id="j")[:5] == b"%PDF-"


def test_a_report_and_a_form_of_one_product_id_are_broken(tmp_path):
    drop_example(tmp_path, "twice")
    write_custom(tmp_path, name="twice")
    [broken] = build_registry(tmp_path).broken()
    assert broken.product_id == "twice" and "both a document template" in broken.reason


def test_a_broken_templates_reason_names_no_step_of_the_service_s_own(tmp_path):
    drop_example(tmp_path)
    (tmp_path / f"{PRODUCT}.typ").write_text('#let x = 1\n#x.nosuch\n')
    [broken] = build_registry(tmp_path).broken()
    assert broken.reason == f"{PRODUCT}.typ:2:3: cannot access fields on type integer"


def test_a_template_that_reads_sys_inputs_through_inputs_is_still_served(tmp_path, caplog):
    drop_example(tmp_path)
    source = (tmp_path / f"{PRODUCT}.typ").read_text()
    (tmp_path / f"{PRODUCT}.typ").write_text(
        source.replace('#let (data, meta) = json("/.pdfjobs/input.json")', "#let (data, meta) = inputs()"))
    template = build_registry(tmp_path).get(PRODUCT)
    assert template.reads_sys_inputs and build_registry(EXAMPLE_TEMPLATES).get(PRODUCT).reads_sys_inputs is False
    assert "event=template_reads_sys_inputs" in caplog.text and '/.pdfjobs/input.json' in caplog.text
    sample = template.sample() | {"participant": {"name": "Łódź Ωμέγα"}}
    text = flat("\n".join(page_texts(template.render(sample, code="c1", job_id="job-7"))))
    assert "Łódź Ωμέγα" in text and "job-7" in text


def test_files_starting_with_underscore_are_parts_not_products(tmp_path):
    (tmp_path / "_parts.typ").write_text("#let hello = [Hello]\n")
    drop_example(tmp_path)
    source = (tmp_path / f"{PRODUCT}.typ").read_text()
    package = '#import "@local/pdfjobs:1.0.0": *'
    (tmp_path / f"{PRODUCT}.typ").write_text(source.replace(package, package + '\n#import "_parts.typ": hello')
                                             + "\n#hello\n")
    registry = build_registry(tmp_path)
    assert registry.broken() == [] and "_parts" not in registry
    assert "Hello" in page_texts(registry.get(PRODUCT).render(registry.get(PRODUCT).sample()))[-1]


def test_a_templates_dir_report_replaces_the_builtin_of_the_same_id(tmp_path):
    drop_example(tmp_path, "minatBakatUmum")
    assert build_registry(tmp_path).get("minatBakatUmum").title == "Gaya Belajar"


def test_a_broken_replacement_does_not_fall_back_to_the_builtin(tmp_path):
    drop_example(tmp_path, "minatBakatUmum")
    (tmp_path / "minatBakatUmum.typ").write_text("#let x = (\n")
    with pytest.raises(BrokenTemplateError):
        build_registry(tmp_path).get("minatBakatUmum")


def test_unknown_product_lists_known_ids():
    with pytest.raises(UnknownTemplateError, match="minatBakatUmum") as info:
        load_registry().get("noSuchProduct")
    assert "noSuchProduct" in str(info.value)


def test_catalog_reloads_when_a_file_changes(tmp_path):
    catalog = TemplateCatalog(tmp_path, reload_interval=1e-9)  # look at every lookup
    assert PRODUCT not in catalog
    drop_example(tmp_path)
    assert PRODUCT in catalog  # a lookup after the interval saw the new files
    schema = tmp_path / f"{PRODUCT}.schema.json"
    schema.write_text(schema.read_text().replace('"title": "Gaya Belajar"', '"title": "Gaya Belajar v2"'))
    os.utime(schema, ns=(1, 1))  # a different modification time, however fast the test runs
    assert catalog.get(PRODUCT).title == "Gaya Belajar v2"


def test_catalog_without_polling_reloads_on_request(tmp_path):
    catalog = TemplateCatalog(tmp_path, reload_interval=0)
    drop_example(tmp_path)
    assert PRODUCT not in catalog
    catalog.request_reload()  # what SIGHUP does
    assert PRODUCT in catalog and catalog.broken() == []


def test_library_bar_chart_wraps_long_labels_and_splits_in_blocks(tmp_path):
    drop_example(tmp_path)
    template = build_registry(tmp_path).get(PRODUCT)
    data = template.sample()
    data["styles"] = [{"name": f"Gaya belajar dengan nama yang sangat panjang sekali untuk diuji nomor {n:02d} akhir",
                       "score": 9 * n} for n in range(1, 11)]
    whole = flat("\n".join(page_texts(template.render(data))))
    for style in data["styles"]:
        assert style["name"] in whole


def make_font(path: Path, char: str) -> None:
    """A one-glyph font, family "Test Runes": Noto Sans's "A" cut out and mapped to `char` instead."""
    from fontTools.subset import Options, Subsetter
    from fontTools.ttLib import TTFont

    font = TTFont(str(FONTS_DIR / "NotoSans-Regular.ttf"))
    subsetter = Subsetter(Options(name_IDs=["*"], name_languages=["*"]))
    subsetter.populate(text="A")
    subsetter.subset(font)
    glyph = font.getBestCmap()[ord("A")]
    for table in font["cmap"].tables:
        table.cmap = {ord(char): glyph}
    for record in font["name"].names:
        if record.nameID in (1, 4, 6, 16):
            record.string = "TestRunes" if record.nameID == 6 else "Test Runes"
    font.save(str(path))


def test_fonts_in_the_templates_dir_are_used_after_a_reload(tmp_path):
    drop_example(tmp_path)
    data = json.loads((EXAMPLE_TEMPLATES / f"{PRODUCT}.schema.json").read_text())["examples"][0]
    data["participant"]["name"] = "Rizky \u16a0"  # a runic letter: no shipped font has it
    catalog = TemplateCatalog(tmp_path, reload_interval=0)
    assert [e["field"] for e in catalog.get(PRODUCT).validate(data)] == ["data.participant.name"]
    (tmp_path / "fonts").mkdir()
    make_font(tmp_path / "fonts" / "TestRunes.ttf", "\u16a0")
    catalog.request_reload()
    template = catalog.get(PRODUCT)
    assert template.validate(data) == []
    pdf = template.render(data)
    assert "Rizky \u16a0" in page_texts(pdf)[0] and any("TestRunes" in name for name in fonts(pdf))
