"""Render the sample PDFs and every page of them as PNG, to look at: `python -m render.samples OUTDIR`.

`make samples` runs it into var/samples. The reports carry the sample letterhead of examples/branding/;
PNGs need pypdfium2 (requirements-dev.txt), without it only the PDFs are written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from render.context import ReportContext
from render.registry import build_registry

PROJECT_DIR = Path(__file__).resolve().parent.parent
EXAMPLES = PROJECT_DIR / "examples"
NAME = "Dédé Ṣāliḥah Nguyễn Łódź Ωμέγα Юлия محمد 王小明"  # the name of issue 20
SAMPLE_CONTEXT = ReportContext(
    organization_name="Biro Psikologi Cahaya Mandiri",
    organization_address="Jl. Kaliurang Km 5 No. 12, Yogyakarta · (0274) 555-0123 · halo@cahayamandiri.example",
    organization_city="Yogyakarta",
    logo_file=EXAMPLES / "branding" / "logo.svg",
    psychologist_name="Dra. Ratna Wulandari, M.Psi., Psikolog",
    psychologist_licence="SIPP 1234-21-2-1",
)


def _example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))["data"]


def forty_scales() -> list[dict[str, Any]]:
    """40 scales with names of up to 80 characters that differ near their end."""
    topics = ("Penalaran Abstrak", "Pemahaman Verbal", "Kemampuan Numerik", "Relasi Spasial", "Ketelitian Klerikal")
    return [{"name": f"Kemampuan {topics[n % 5]} dalam Pemecahan Masalah Kompleks, Subtes {n + 1:02d}"[:80],
             "score": (n * 37) % 101, "raw_score": n + 3} for n in range(40)]


def samples() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(file name, product id, data) of every sample."""
    report = _example("minatBakatUmum")
    yield "minatBakatUmum", "minatBakatUmum", report
    yield "minatBakatUmum-en", "minatBakatUmum", report | {"language": "en"}
    unicode_name = json.loads(json.dumps(report))
    unicode_name["participant"]["name"] = NAME
    yield "minatBakatUmum-unicode", "minatBakatUmum", unicode_name
    yield "minatBakatUmum-40-scales", "minatBakatUmum", unicode_name | {"scales": forty_scales(), "summary": None}
    form = _example("formulirPersetujuan")
    form["participant"]["name"] = NAME
    yield "formulirPersetujuan", "formulirPersetujuan", form
    yield "gayaBelajar", "gayaBelajar", json.loads(
        (EXAMPLES / "templates" / "gayaBelajar.schema.json").read_text(encoding="utf-8"))["examples"][0]


def write_pngs(pdf: Path, scale: float = 1.5) -> list[Path]:
    """Every page of `pdf` as `<name>-<page>.png` beside it; [] without pypdfium2."""
    try:
        import pypdfium2
    except ImportError:
        return []
    written = []
    document = pypdfium2.PdfDocument(str(pdf))
    for number, page in enumerate(document, 1):
        path = pdf.with_name(f"{pdf.stem}-{number}.png")
        page.render(scale=scale).to_pil().save(path)
        written.append(path)
    document.close()
    return written


def main(argv: list[str] | None = None) -> int:
    """Render every sample into OUTDIR (PDF and PNG per page)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    registry = build_registry(EXAMPLES / "templates", SAMPLE_CONTEXT)
    for name, product_id, data in samples():
        data = {key: value for key, value in data.items() if value is not None}
        pdf = args.outdir / f"{name}.pdf"
        pdf.write_bytes(registry.get(product_id).render(data, code="SAMPLE-0001", job_id=f"sample-{name}"))
        pngs = write_pngs(pdf)
        sys.stdout.write(f"{pdf} ({len(pngs)} PNG page(s))\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
