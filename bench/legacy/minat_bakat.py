"""The `minatBakatUmum` report (general interest and aptitude): data model, texts and template."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core import PydanticCustomError

from render.base import (
    Progress,
    RenderError,
    Template,
    invalid_data_error,
    report_progress,
)
from render.validation import field_errors

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


def _score_range(value: float) -> float:
    if not 0 <= value <= 100:
        raise PydanticCustomError("score_range", "must be a number from 0 to 100")
    return value


Score = Annotated[
    float,
    Field(strict=True, allow_inf_nan=False, json_schema_extra={"minimum": 0, "maximum": 100}),
    AfterValidator(_score_range),
]
Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=400)]


class Participant(BaseModel):
    """The person tested."""

    model_config = ConfigDict(extra="ignore")

    name: ShortText
    birth_date: dt.date | None = None
    gender: Tag | None = None
    school: ShortText | None = None
    grade: Tag | None = None


class Scale(BaseModel):
    """One measured scale (interest or aptitude) and its score."""

    model_config = ConfigDict(extra="ignore")

    name: Name
    score: Score = Field(description="Standardised score or percentile, 0-100.")
    raw_score: float | None = Field(default=None, strict=True, allow_inf_nan=False, ge=0, le=100000)
    category: Tag | None = Field(default=None, description="Defaults from the score: <40 low, <70 average, else high.")
    description: LongText | None = Field(default=None, description="Narrative; generated from the category if absent.")


class MinatBakatData(BaseModel):
    """Data of the minatBakatUmum report."""

    model_config = ConfigDict(extra="ignore", title="minatBakatUmum data")

    code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = Field(
        default=None, description="Request code shown in the header; the worker passes the request's code."
    )
    participant: Participant
    test_date: dt.date
    report_date: dt.date | None = Field(default=None, description="Shown in the page header; defaults to test_date.")
    language: Literal["id", "en"] = Field(default="id", description="Language of headings and generated texts.")
    scales: list[Scale] = Field(min_length=1, max_length=30)
    summary: Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)] | None = None
    recommendations: list[Line] = Field(default_factory=list, max_length=20)


LEVELS = ("low", "average", "high")
LABELS: dict[str, dict[str, str]] = {
    "id": {
        "low": "Rendah", "average": "Sedang", "high": "Tinggi", "report": "Laporan Hasil Tes",
        "participant": "Data Peserta", "name": "Nama", "birth_date": "Tanggal lahir", "gender": "Jenis kelamin",
        "school": "Sekolah", "grade": "Kelas", "test_date": "Tanggal tes", "scores": "Skor Skala",
        "scale": "Skala", "raw": "Skor mentah", "score": "Skor (0-100)", "category": "Kategori",
        "chart": "Profil Skor", "narrative": "Uraian per Skala", "summary": "Ringkasan",
        "recommendations": "Rekomendasi", "page": "Halaman {n} dari {m}", "code": "Kode",
        "date": "Tanggal laporan",
    },
    "en": {
        "low": "Low", "average": "Average", "high": "High", "report": "Test Report",
        "participant": "Participant", "name": "Name", "birth_date": "Birth date", "gender": "Gender",
        "school": "School", "grade": "Grade", "test_date": "Test date", "scores": "Scale Scores",
        "scale": "Scale", "raw": "Raw score", "score": "Score (0-100)", "category": "Category",
        "chart": "Score Profile", "narrative": "Scale Descriptions", "summary": "Summary",
        "recommendations": "Recommendations", "page": "Page {n} of {m}", "code": "Code",
        "date": "Report date",
    },
}
_NARRATIVES = {
    "id": {
        "low": "Skor {name} berada pada kategori {cat} ({score}). Aspek ini belum menjadi kekuatan utama; "
        "kegiatan di bidang ini mungkin terasa kurang menarik atau memerlukan usaha lebih.",
        "average": "Skor {name} berada pada kategori {cat} ({score}). Kemampuan dan minat pada aspek ini "
        "cukup memadai dan dapat dikembangkan lebih lanjut melalui latihan dan pengalaman.",
        "high": "Skor {name} berada pada kategori {cat} ({score}). Aspek ini merupakan kekuatan yang menonjol "
        "dan layak dipertimbangkan dalam memilih jurusan maupun karier.",
    },
    "en": {
        "low": "The {name} score is in the {cat} range ({score}). This area is not yet a main strength; "
        "activities in it may feel less appealing or take extra effort.",
        "average": "The {name} score is in the {cat} range ({score}). Interest and ability here are adequate "
        "and can be developed further through practice and experience.",
        "high": "The {name} score is in the {cat} range ({score}). This area is a clear strength worth "
        "considering when choosing a field of study or a career.",
    },
}
_SUMMARY = {
    "id": "Skor tertinggi {name} diperoleh pada {top}. Hasil ini sebaiknya dibahas bersama psikolog atau "
    "guru BK sebelum mengambil keputusan studi atau karier.",
    "en": "{name} scored highest on {top}. Discuss these results with a psychologist or counsellor "
    "before making study or career decisions.",
}


def level_of(score: float) -> str:
    """Return "low", "average" or "high" for a 0-100 score."""
    return "low" if score < 40 else "average" if score < 70 else "high"


def format_score(value: float) -> str:
    """Format a score without a needless ".0"."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def category_of(scale: Scale, language: str) -> str:
    """Return the scale's category, derived from its score when not given."""
    return scale.category or LABELS[language][level_of(scale.score)]


def narrative_of(scale: Scale, language: str) -> str:
    """Return the scale's description, generated from its level when not given."""
    if scale.description:
        return scale.description
    text = _NARRATIVES[language][level_of(scale.score)]
    return text.format(name=scale.name, cat=category_of(scale, language), score=format_score(scale.score))


def summary_of(data: MinatBakatData) -> str:
    """Return the summary text, generated from the top scales when not given."""
    if data.summary:
        return data.summary
    top = sorted(data.scales, key=lambda s: s.score, reverse=True)[:3]
    return _SUMMARY[data.language].format(name=data.participant.name, top=", ".join(s.name for s in top))


@cache
def _schema() -> dict[str, Any]:
    return MinatBakatData.model_json_schema()


@dataclass(frozen=True)
class MinatBakatTemplate(Template):
    """The reportlab-rendered general interest and aptitude report."""

    product_id: str = "minatBakatUmum"
    title: str = "Minat Bakat Umum"
    kind: str = "report"

    def schema(self) -> dict[str, Any]:
        """Return the JSON Schema of the report data."""
        return _schema()

    def parse(self, data: object) -> MinatBakatData:
        """Validate `data` into the model; raise RenderError listing the field errors."""
        if not isinstance(data, dict):
            raise invalid_data_error(self.product_id, [{"field": "data", "message": "must be an object"}])
        try:
            return MinatBakatData.model_validate(data)
        except ValidationError as exc:
            raise invalid_data_error(self.product_id, field_errors(exc, prefix="data")) from None

    def validate(self, data: object) -> list[dict[str, str]]:
        """Return the field errors of `data` (empty when valid)."""
        try:
            self.parse(data)
        except RenderError as exc:
            return exc.errors
        return []

    def render(self, data: dict[str, Any], progress: Progress | None = None, *, code: str | None = None,
               job_id: str | None = None) -> bytes:
        """Validate and render the report to PDF bytes; `code` (the request's code) goes in the header."""
        from bench.legacy.minat_bakat_pdf import build_pdf

        model = self.parse(data)
        report_progress(progress, 10, "data validated")
        pdf = build_pdf(model, code=code or model.code or "", product=self.title, progress=progress)
        report_progress(progress, 100, "report rendered")
        return pdf

    def warm_up(self) -> None:
        """Render a small report once: a process's first render is several times slower than later ones
        (reportlab's lazy imports, font metrics, pydantic's first validation)."""
        self.render(_WARM_UP_DATA, code="warm-up")


# Two pages, every section and both score levels with and without a narrative, like a real report.
_WARM_UP_DATA: dict[str, Any] = {
    "participant": {"name": "Warm-up", "birth_date": "2000-01-01", "gender": "-", "school": "-", "grade": "-"},
    "test_date": "2026-01-01",
    "scales": [
        {"name": f"Scale {number}", "score": 10 * number, "raw_score": number,
         **({"description": "Warm-up text. " * 20} if number % 2 else {})}
        for number in range(1, 10)
    ],
    "summary": "Warm-up summary. " * 10,
    "recommendations": ["Warm-up recommendation."] * 3,
}
