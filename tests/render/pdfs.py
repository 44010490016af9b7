"""Reading PDFs back in tests: their text and every font they use (embedded or not)."""

from __future__ import annotations

import io
from typing import Any

from pypdf import PdfReader

NAME = "Dédé Ṣāliḥah Nguyễn Łódź Ωμέγα Юлия محمد 王小明"  # the name of issue 20's "done" criteria
FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")


def page_texts(pdf: bytes) -> list[str]:
    """The extracted text of every page."""
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def flat(text: str) -> str:
    """Text with every run of white space (line breaks of wrapped text) made one space."""
    return " ".join(text.split())


def _embedded(font: Any) -> bool:
    if font.get("/Subtype") == "/Type3":  # glyphs drawn by the PDF itself
        return True
    if font.get("/Subtype") == "/Type0":
        font = font["/DescendantFonts"][0].get_object()
    descriptor = font.get("/FontDescriptor")
    return descriptor is not None and any(key in descriptor.get_object() for key in FONT_FILES)


def _resource_fonts(resources: Any, found: dict[str, bool], seen: set[int]) -> None:
    if resources is None:
        return
    resources = resources.get_object()
    for ref in (resources.get("/Font") or {}).values():
        font = ref.get_object()
        found[str(font.get("/BaseFont"))] = _embedded(font)
    for ref in (resources.get("/XObject") or {}).values():
        xobject = ref.get_object()
        if id(xobject) not in seen and xobject.get("/Subtype") == "/Form":
            seen.add(id(xobject))
            _resource_fonts(xobject.get("/Resources"), found, seen)


def fonts(pdf: bytes) -> dict[str, bool]:
    """Every font the pages and their annotations' appearances use: base font name -> embedded."""
    found: dict[str, bool] = {}
    seen: set[int] = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        _resource_fonts(page.get("/Resources"), found, seen)
        for ref in page.get("/Annots") or []:
            appearance = ref.get_object().get("/AP", {}).get("/N")
            if appearance is not None and hasattr(appearance.get_object(), "get_data"):
                _resource_fonts(appearance.get_object().get("/Resources"), found, seen)
    return found


def assert_every_font_embedded(pdf: bytes) -> None:
    """Fail naming the fonts that are not embedded (and fail when the PDF uses no font at all)."""
    used = fonts(pdf)
    assert used, "the PDF uses no font"
    assert [name for name, embedded in used.items() if not embedded] == []
