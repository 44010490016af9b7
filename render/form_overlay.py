"""Drawing a filled form's values with the report fonts (any script, embedded), instead of the form's own font.

The form's widgets are read with pypdf; Typst (render/forms/overlay.typ) draws each field's box, value
and check mark. Flattened: the drawing is merged into the pages and the widgets go. Editable: each text
field gets its drawing as its appearance, so viewers show the value even where the form's font has no glyph.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import typst
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, FloatObject, NameObject, StreamObject, TextStringObject

from render.base import TemplateError
from render.typst_template import MAIN_FILE

OVERLAY = Path(__file__).resolve().parent / "forms" / "overlay.typ"
SPEC_FILE = ".pdfjobs/spec.json"  # `/.pdfjobs/spec.json` to overlay.typ, in memory
MULTILINE = 1 << 12  # text field flag (PDF 32000-1, table 228)
_ALIGN = {0: "left", 1: "center", 2: "right"}
_FONT_SIZE = re.compile(rb"([\d.]+)\s+Tf")


@dataclass
class Widget:
    """One widget annotation of a form field, with what is needed to draw it."""

    page: int
    annotation: DictionaryObject
    field: DictionaryObject
    name: str
    kind: str  # "text", "check" or "other"
    rect: tuple[float, float, float, float]

    def item(self, value: str | bool, *, x: float, y: float) -> dict[str, Any]:
        """The overlay item drawing this widget with `value` at (x, y)."""
        characteristics = self.annotation.get("/MK", DictionaryObject())
        border = self.annotation.get("/BS", DictionaryObject()).get("/W", 1 if "/BC" in characteristics else 0)
        size = _FONT_SIZE.search(str(self.annotation.get("/DA", self.field.get("/DA", ""))).encode())
        return {
            "x": x, "y": y, "w": self.width, "h": self.height, "kind": self.kind,
            "text": value if isinstance(value, str) else "", "on": value is True,
            "size": float(size.group(1)) if size else 0.0,
            "align": _ALIGN.get(int(self.field.get("/Q", self.annotation.get("/Q", 0))), "left"),
            "multiline": bool(int(self.field.get("/Ff", 0)) & MULTILINE),
            "background": _colour(characteristics.get("/BG")), "border": _colour(characteristics.get("/BC")),
            "border_width": float(border),
        }

    @property
    def width(self) -> float:
        """Width in points."""
        return self.rect[2] - self.rect[0]

    @property
    def height(self) -> float:
        """Height in points."""
        return self.rect[3] - self.rect[1]


def _colour(value: Any) -> list[float] | None:
    return [float(v) for v in value] if value else None


def _qualified_name(field: DictionaryObject) -> str:
    names = []
    node: Any = field
    while node is not None:
        if "/T" in node:
            names.append(str(node["/T"]))
        node = node.get("/Parent")
        node = node.get_object() if node is not None else None
    return ".".join(reversed(names))


def widgets(writer: PdfWriter) -> list[Widget]:
    """Every widget of the form, page by page."""
    found = []
    for number, page in enumerate(writer.pages):
        for ref in page.get("/Annots", ArrayObject()):
            annotation = ref.get_object()
            if annotation.get("/Subtype") != "/Widget":
                continue
            field = annotation if "/T" in annotation else annotation["/Parent"].get_object()
            field_type = field.get("/FT", annotation.get("/FT"))
            kind = {"/Tx": "text", "/Btn": "check"}.get(str(field_type), "other")
            x0, y0, x1, y1 = (float(v) for v in annotation["/Rect"])
            rect = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            found.append(Widget(number, annotation, field, _qualified_name(field), kind, rect))
    return found


@cache
def _compiler(fonts: typst.Fonts) -> typst.Compiler:
    return typst.Compiler(None, root=str(OVERLAY.parent), font_paths=fonts, ignore_system_fonts=True)


def draw(fonts: typst.Fonts, pages: list[dict[str, Any]]) -> PdfReader:
    """Typeset the overlay pages (see overlay.typ) and return them as a PDF to merge."""
    # The spec as an in-memory file, not sys.inputs: see render/typst_template.py for why.
    files = {MAIN_FILE: f'#include "{OVERLAY.name}"'.encode(),
             SPEC_FILE: json.dumps({"pages": pages}, ensure_ascii=False).encode()}
    try:
        pdf = _compiler(fonts).compile(input=files, pdf_tags=False)
    except typst.TypstError as exc:  # a bug of ours, not of the form: say so
        raise TemplateError(f"drawing the form's values failed: {exc.message}", file=OVERLAY.name) from None
    return PdfReader(io.BytesIO(pdf))


def flatten_onto_pages(writer: PdfWriter, fonts: typst.Fonts, values: dict[str, str | bool]) -> None:
    """Draw every field (box, value, check mark) into its page, then remove the widgets and the form."""
    boxes = [page.mediabox for page in writer.pages]
    pages: list[dict[str, Any]] = [{"width": float(box.width), "height": float(box.height), "items": []}
                                   for box in boxes]
    for widget in widgets(writer):
        if widget.kind != "other":
            box = boxes[widget.page]
            value = values.get(widget.name, widget_value(widget))
            item = widget.item(value, x=widget.rect[0] - float(box.left), y=widget.rect[1] - float(box.bottom))
            pages[widget.page]["items"].append(item)
    overlay = draw(fonts, pages)
    for page, box, drawn in zip(writer.pages, boxes, overlay.pages, strict=True):
        page.merge_translated_page(drawn, float(box.left), float(box.bottom))
    writer.remove_annotations(subtypes="/Widget")
    if "/AcroForm" in writer.root_object:
        del writer.root_object["/AcroForm"]


def widget_value(widget: Widget) -> str | bool:
    """What a field shows now: its text, or whether its check box is on."""
    value = widget.field.get("/V")
    if widget.kind == "check":
        return value is not None and str(value) != "/Off"
    return str(value) if value is not None else ""


def fill_editable(writer: PdfWriter, fonts: typst.Fonts, values: dict[str, str | bool],
                  on_values: dict[str, str]) -> None:
    """Set every value, and give each filled text field an appearance drawn in the report fonts."""
    found = [w for w in widgets(writer) if w.name in values]
    texts = [w for w in found if w.kind == "text" and values[w.name]]
    for widget in found:
        value = values[widget.name]
        if widget.kind == "check":
            state = NameObject(on_values.get(widget.name, "/Yes") if value is True else "/Off")
            widget.field[NameObject("/V")] = state
            widget.annotation[NameObject("/AS")] = state
        else:
            widget.field[NameObject("/V")] = TextStringObject(str(value))
    if not texts:
        return
    overlay = draw(fonts, [{"width": w.width, "height": w.height, "items": [w.item(values[w.name], x=0, y=0)]}
                           for w in texts])
    for widget, drawn in zip(texts, overlay.pages, strict=True):
        widget.annotation[NameObject("/AP")] = DictionaryObject({NameObject("/N"): _as_form_xobject(writer, drawn,
                                                                                                    widget)})


def _as_form_xobject(writer: PdfWriter, drawn: Any, widget: Widget) -> Any:
    """Turn one overlay page into a Form XObject of the writer (the widget's normal appearance).

    The page is added to the writer (which clones its content and resources into it), its content
    stream becomes the XObject, and the page is removed again.
    """
    added = writer.add_page(drawn)
    content_ref = added["/Contents"]
    content = content_ref.get_object()
    if not isinstance(content, StreamObject):  # Typst writes one content stream per page
        raise TemplateError("drawing the form's values gave a page without one content stream", file=OVERLAY.name)
    content[NameObject("/Type")] = NameObject("/XObject")
    content[NameObject("/Subtype")] = NameObject("/Form")
    content[NameObject("/BBox")] = ArrayObject([FloatObject(0), FloatObject(0), FloatObject(widget.width),
                                                FloatObject(widget.height)])
    content[NameObject("/Resources")] = added["/Resources"]
    del writer.pages[len(writer.pages) - 1]
    return content_ref
