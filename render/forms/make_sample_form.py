"""Generate the sample fillable form render/templates/formulirPersetujuan.pdf (consent to a psychological test).

Run from the repository root: `python -m render.forms.make_sample_form [output.pdf]`.
The mapping that fills it is render/templates/formulirPersetujuan.json; keep field names in sync.
Its text is set in Noto Sans (embedded); the service draws filled values in the same fonts.
"""

from __future__ import annotations

import sys
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from render.fonts import FONTS_DIR

OUTPUT = Path(__file__).resolve().parent.parent / "templates" / "formulirPersetujuan.pdf"
REGULAR, BOLD = "NotoSans", "NotoSans-Bold"
WIDTH, HEIGHT = A4
LEFT = 20 * mm
FIELD_X = 75 * mm
FIELD_W = WIDTH - FIELD_X - LEFT

TEXT_FIELDS = [  # (field name, label, tooltip)
    ("nama_peserta", "Nama peserta", "Nama lengkap peserta tes"),
    ("tanggal_lahir", "Tanggal lahir (dd/mm/yyyy)", "Tanggal lahir peserta"),
    ("usia", "Usia (tahun)", "Usia peserta saat tes"),
    ("sekolah", "Sekolah / instansi", "Asal sekolah atau instansi"),
    ("nama_wali", "Nama orang tua / wali", "Nama orang tua atau wali"),
    ("hubungan_wali", "Hubungan dengan peserta", "Ayah, ibu, atau wali"),
    ("telepon_wali", "Nomor telepon", "Nomor telepon orang tua atau wali"),
    ("tanggal_tes", "Tanggal tes (dd/mm/yyyy)", "Tanggal pelaksanaan tes"),
]
CHECKBOXES = [  # (field name, statement)
    ("setuju_tes", "Saya menyetujui peserta mengikuti rangkaian tes minat dan bakat."),
    ("setuju_data", "Saya mengizinkan data hasil tes diolah untuk keperluan laporan psikologis."),
    ("setuju_sekolah", "Saya mengizinkan ringkasan hasil tes dibagikan kepada guru BK di sekolah."),
]


def _register_fonts() -> None:
    """Embed Noto Sans (subset) for the form's own text, like every PDF of the service."""
    for name, file in ((REGULAR, "NotoSans-Regular.ttf"), (BOLD, "NotoSans-Bold.ttf")):
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(FONTS_DIR / file)))


def _text_fields(canvas: Canvas, top: float) -> float:
    """Draw the labelled text fields and return the y below them."""
    y = top
    for name, label, tooltip in TEXT_FIELDS:
        canvas.setFont(REGULAR, 10)
        canvas.drawString(LEFT, y + 6, label)
        canvas.acroForm.textfield(name=name, tooltip=tooltip, x=FIELD_X, y=y, width=FIELD_W, height=18,
                                  fontName="Helvetica", fontSize=10, borderWidth=0.6, borderColor=colors.grey,
                                  fillColor=colors.HexColor("#f4f7fb"), textColor=colors.black, maxlen=120)
        y -= 26
    return y


def _checkboxes(canvas: Canvas, top: float) -> float:
    """Draw the consent checkboxes with their statements and return the y below them."""
    y = top
    for name, statement in CHECKBOXES:
        canvas.acroForm.checkbox(name=name, tooltip=statement, x=LEFT, y=y - 3, size=14, buttonStyle="check",
                                 borderWidth=0.8, borderColor=colors.black, fillColor=colors.white,
                                 textColor=colors.black, fieldFlags="")
        canvas.setFont(REGULAR, 10)
        canvas.drawString(LEFT + 22, y, statement)
        y -= 24
    return y


def _signature(canvas: Canvas, top: float) -> None:
    """Draw the place/date fields and the signature lines."""
    canvas.setFont(REGULAR, 10)
    canvas.drawString(LEFT, top + 6, "Dibuat di")
    canvas.acroForm.textfield(name="kota", tooltip="Kota penandatanganan", x=LEFT + 22 * mm, y=top, width=50 * mm,
                              height=18, fontName="Helvetica", fontSize=10, borderWidth=0.6, borderColor=colors.grey,
                              fillColor=colors.HexColor("#f4f7fb"), textColor=colors.black, maxlen=60)
    canvas.drawString(LEFT + 76 * mm, top + 6, "tanggal")
    canvas.acroForm.textfield(name="tanggal_tanda_tangan", tooltip="Tanggal penandatanganan", x=LEFT + 92 * mm,
                              y=top, width=40 * mm, height=18, fontName="Helvetica", fontSize=10, borderWidth=0.6,
                              borderColor=colors.grey, fillColor=colors.HexColor("#f4f7fb"),
                              textColor=colors.black, maxlen=20)
    y = top - 80
    for x, role in ((LEFT, "Orang tua / wali"), (WIDTH / 2 + 10 * mm, "Psikolog pemeriksa")):
        canvas.line(x, y, x + 65 * mm, y)
        canvas.drawString(x, y - 14, role)


def build(output: Path = OUTPUT) -> Path:
    """Write the sample form to `output` and return its path."""
    _register_fonts()
    canvas = Canvas(str(output), pagesize=A4, invariant=True, initialFontName=REGULAR, initialFontSize=10)
    canvas.setTitle("Formulir Persetujuan Tes Psikologi")
    canvas.setFillColor(colors.HexColor("#1f4e79"))
    canvas.setFont(BOLD, 16)
    canvas.drawCentredString(WIDTH / 2, HEIGHT - 30 * mm, "FORMULIR PERSETUJUAN TES PSIKOLOGI")
    canvas.setFillColor(colors.black)
    canvas.setFont(REGULAR, 10)
    intro = ("Yang bertanda tangan di bawah ini, orang tua / wali dari peserta berikut, menyatakan telah "
             "menerima penjelasan mengenai tujuan dan prosedur tes minat dan bakat:")
    text = canvas.beginText(LEFT, HEIGHT - 42 * mm)
    for line in simpleSplit(intro, REGULAR, 10, WIDTH - 2 * LEFT):
        text.textLine(line)
    canvas.drawText(text)
    y = _text_fields(canvas, HEIGHT - 62 * mm)
    canvas.setFont(BOLD, 11)
    canvas.drawString(LEFT, y - 4, "Pernyataan persetujuan")
    y = _checkboxes(canvas, y - 30)
    _signature(canvas, y - 16)
    canvas.showPage()
    canvas.save()
    return output


if __name__ == "__main__":
    written = build(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
    sys.stdout.write(f"wrote {written}\n")
