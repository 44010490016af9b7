"""Layout of the `minatBakatUmum` report with reportlab platypus (built-in Helvetica fonts only)."""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
from functools import cache, partial
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    ListFlowable,
    ListItem,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from bench.legacy.minat_bakat import (
    LABELS,
    MinatBakatData,
    category_of,
    format_score,
    level_of,
    narrative_of,
    summary_of,
)
from render.base import Progress, report_progress

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 18 * mm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
BRAND = colors.HexColor("#1f4e79")
LEVEL_COLORS = {"low": colors.HexColor("#e07a5f"), "average": colors.HexColor("#f2cc8f"),
                "high": colors.HexColor("#81b29a")}
_MONTHS = {
    "id": ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
           "November", "Desember"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}


@cache
def styles() -> dict[str, ParagraphStyle]:
    """Build the paragraph styles once per process."""
    base = getSampleStyleSheet()
    body = ParagraphStyle("mbBody", parent=base["BodyText"], fontName="Helvetica", fontSize=9.5, leading=13)
    return {
        "title": ParagraphStyle("mbTitle", parent=base["Title"], fontName="Helvetica-Bold", fontSize=17,
                                leading=21, textColor=BRAND, spaceAfter=2),
        "subtitle": ParagraphStyle("mbSub", parent=body, alignment=TA_CENTER, textColor=colors.grey,
                                   spaceAfter=8),
        "h2": ParagraphStyle("mbH2", parent=base["Heading2"], fontName="Helvetica-Bold", fontSize=12.5,
                             leading=16, textColor=BRAND, spaceBefore=10, spaceAfter=5),
        "h3": ParagraphStyle("mbH3", parent=body, fontName="Helvetica-Bold", fontSize=10, spaceBefore=6),
        "body": body,
        "cell": ParagraphStyle("mbCell", parent=body, fontSize=9, leading=11),
    }


def plain(value: str) -> str:
    """Fold characters the built-in fonts cannot show (cp1252 only) to their base letter, else "?"."""
    try:
        value.encode("cp1252")
        return value
    except UnicodeEncodeError:
        return "".join(_fold(char) for char in value)


def _fold(char: str) -> str:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return unicodedata.normalize("NFKD", char).encode("cp1252", "ignore").decode("cp1252") or "?"
    return char


def text(value: str) -> str:
    """Escape user text for Paragraph markup, keeping line breaks."""
    return escape(plain(value)).replace("\n", "<br/>")


def long_date(value: dt.date, language: str) -> str:
    """Format a date as "15 Januari 2026" / "15 January 2026"."""
    return f"{value.day} {_MONTHS[language][value.month - 1]} {value.year}"


class _NumberedCanvas(Canvas):
    """Canvas that defers pages so it can print "Page N of M" once the total is known."""

    def __init__(self, *args: Any, page_label: str = "Page {n} of {m}", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._page_label = page_label
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802 (reportlab API)
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont("Helvetica", 8)
            self.setFillColor(colors.grey)
            label = self._page_label.format(n=self._pageNumber, m=total)
            self.drawRightString(PAGE_WIDTH - MARGIN, 10 * mm, label)
            super().showPage()
        super().save()


def _header(canvas: Canvas, _doc: Any, *, left: str, right: str) -> None:
    canvas.saveState()
    canvas.setFont("Helvetica-Bold", 9)
    canvas.setFillColor(BRAND)
    top = PAGE_HEIGHT - 11 * mm
    canvas.drawString(MARGIN, top, left)
    canvas.setFont("Helvetica", 8.5)
    canvas.setFillColor(colors.black)
    canvas.drawRightString(PAGE_WIDTH - MARGIN, top, right)
    canvas.setStrokeColor(BRAND)
    canvas.setLineWidth(0.8)
    canvas.line(MARGIN, top - 2.5 * mm, PAGE_WIDTH - MARGIN, top - 2.5 * mm)
    canvas.restoreState()


def participant_block(data: MinatBakatData) -> Table:
    """The participant's details as a two-column label/value table."""
    lab, p, lang = LABELS[data.language], data.participant, data.language
    pairs = [(lab["name"], p.name), (lab["test_date"], long_date(data.test_date, lang))]
    pairs += [(lab["birth_date"], long_date(p.birth_date, lang))] if p.birth_date else []
    pairs += [(lab[k], getattr(p, k)) for k in ("gender", "school", "grade") if getattr(p, k)]
    cell = styles()["cell"]
    rows = [[Paragraph(f"<b>{text(k)}</b>", cell), Paragraph(text(v), cell)] for k, v in pairs]
    table = Table(rows, colWidths=[40 * mm, CONTENT_WIDTH - 40 * mm], hAlign="LEFT")
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef3f8")),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#b8c7d9")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]))
    return table


def score_table(data: MinatBakatData) -> Table:
    """The table of scale name, raw score, 0-100 score and category."""
    lab, cell = LABELS[data.language], styles()["cell"]
    rows: list[list[Any]] = [[lab["scale"], lab["raw"], lab["score"], lab["category"]]]
    commands: list[tuple[Any, ...]] = [
        ("BACKGROUND", (0, 0), (-1, 0), BRAND), ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"), ("FONTSIZE", (0, 0), (-1, -1), 9),
        ("ALIGN", (1, 0), (-1, -1), "CENTER"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#b8c7d9")),
    ]
    for i, scale in enumerate(data.scales, start=1):
        raw = format_score(scale.raw_score) if scale.raw_score is not None else "-"
        rows.append([Paragraph(text(scale.name), cell), raw, format_score(scale.score),
                     Paragraph(text(category_of(scale, data.language)), cell)])
        commands.append(("BACKGROUND", (3, i), (3, i), LEVEL_COLORS[level_of(scale.score)]))
    widths = [CONTENT_WIDTH - 105 * mm, 30 * mm, 35 * mm, 40 * mm]
    table = Table(rows, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle(commands))
    return table


def score_chart(data: MinatBakatData) -> Drawing:
    """A horizontal bar chart of the scores, first scale on top, coloured by level."""
    scales = list(reversed(data.scales))
    bar_height = 13
    height = len(scales) * bar_height + 36
    drawing = Drawing(CONTENT_WIDTH, height)
    chart = HorizontalBarChart()
    chart.x, chart.y = 120, 30
    chart.width, chart.height = CONTENT_WIDTH - 150, len(scales) * bar_height
    chart.data = [[s.score for s in scales]]
    chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, 100, 20
    chart.valueAxis.visibleGrid = True
    chart.valueAxis.gridStrokeColor = colors.HexColor("#dddddd")
    chart.valueAxis.labels.fontName = chart.categoryAxis.labels.fontName = "Helvetica"
    chart.valueAxis.labels.fontSize = chart.categoryAxis.labels.fontSize = 8
    chart.categoryAxis.categoryNames = [plain(s.name if len(s.name) <= 26 else s.name[:25] + "…") for s in scales]
    chart.categoryAxis.labels.boxAnchor = "e"
    chart.categoryAxis.labels.dx = -4
    chart.barWidth, chart.groupSpacing = 8, 5
    chart.bars.strokeColor = None
    for i, scale in enumerate(scales):
        chart.bars[(0, i)].fillColor = LEVEL_COLORS[level_of(scale.score)]
    chart.barLabelFormat = format_score
    chart.barLabels.fontName, chart.barLabels.fontSize = "Helvetica", 7.5
    chart.barLabels.boxAnchor, chart.barLabels.dx = "w", 3
    drawing.add(chart)
    for i, level in enumerate(("low", "average", "high")):
        x = chart.x + i * 70
        drawing.add(Rect(x, 1, 7, 7, fillColor=LEVEL_COLORS[level], strokeColor=None))
        drawing.add(String(x + 10, 2, LABELS[data.language][level], fontName="Helvetica", fontSize=7.5))
    return drawing


def narrative_section(data: MinatBakatData) -> list[Flowable]:
    """One heading and paragraph per scale, then the summary and recommendations."""
    st, lab = styles(), LABELS[data.language]
    story: list[Flowable] = [Paragraph(lab["narrative"], st["h2"])]
    for scale in data.scales:
        heading = f"{text(scale.name)} - {format_score(scale.score)} ({text(category_of(scale, data.language))})"
        story.append(KeepTogether([Paragraph(heading, st["h3"]), Paragraph(text(narrative_of(scale, data.language)),
                                                                            st["body"])]))
    story += [Paragraph(lab["summary"], st["h2"]), Paragraph(text(summary_of(data)), st["body"])]
    if data.recommendations:
        items = [ListItem(Paragraph(text(r), st["body"]), leftIndent=12) for r in data.recommendations]
        story += [Paragraph(lab["recommendations"], st["h2"]),
                  ListFlowable(items, bulletType="bullet", start="•", leftIndent=12, bulletFontSize=9)]
    return story


def build_story(data: MinatBakatData, product: str) -> list[Flowable]:
    """All flowables of the report: page 1 participant, scores and chart; page 2 on narratives."""
    st, lab = styles(), LABELS[data.language]
    return [
        Paragraph(f"{text(lab['report'])} {text(product)}", st["title"]),
        Paragraph(text(data.participant.name), st["subtitle"]),
        Paragraph(lab["participant"], st["h2"]), participant_block(data),
        Paragraph(lab["scores"], st["h2"]), score_table(data),
        Paragraph(lab["chart"], st["h2"]), Spacer(1, 2 * mm), score_chart(data),
        PageBreak(),
        *narrative_section(data),
    ]


def build_pdf(data: MinatBakatData, *, code: str, product: str, progress: Progress | None = None) -> bytes:
    """Render the report to PDF bytes."""
    lab = LABELS[data.language]
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN + 4 * mm,
        bottomMargin=MARGIN, title=f"{product} - {data.participant.name}", author="PDF job service",
        subject=f"{lab['code']} {code}".strip(), creator="pdf-job-service",
    )
    report_date = long_date(data.report_date or data.test_date, data.language)
    right = plain(f"{lab['code']}: {code or '-'}   |   {lab['date']}: {report_date}")
    on_page = partial(_header, left=product, right=right)
    story = build_story(data, product)
    report_progress(progress, 30, "layout built")
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page,
              canvasmaker=partial(_NumberedCanvas, page_label=lab["page"]))
    return buffer.getvalue()
