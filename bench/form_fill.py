"""Form fills side by side: the built-in form parsed for every fill against cloned from the parse the template keeps.

`.venv/bin/python -m bench.form_fill [fills] [rounds]`: `rounds` alternated rounds of `fills` fills each way (the
sample data of examples/formulirPersetujuan.json, flattened as a job does); prints the median CPU ms per fill of
each way, their ratio and the machine's steal share during the run.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from pypdf import PdfReader

from bench import machine
from render import FormTemplate, fill_form, load_registry
from render.form_mapping import pdf_values

FORM = "formulirPersetujuan"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / f"{FORM}.json"


def cpu_ms_per_fill(form: FormTemplate, source: bytes | PdfReader, fills: int) -> float:
    """CPU ms per fill of `form`'s sample data, cloning `source` (the form's bytes, or its kept parse)."""
    values = pdf_values(form.mapping, json.loads(EXAMPLE.read_text(encoding="utf-8"))["data"])
    started = time.process_time()
    for _ in range(fills):
        fill_form(source, values, form.mapping.on_values(), flatten=form.mapping.flatten, typesetting=form.typesetting)
    return (time.process_time() - started) * 1000 / fills


def main(argv: list[str]) -> int:
    """Print both ways' median CPU ms per fill and their ratio."""
    fills, rounds = (int(argv[0]) if argv else 10), (int(argv[1]) if len(argv) > 1 else 6)
    form = load_registry().get(FORM)
    assert isinstance(form, FormTemplate)
    cpu_ms_per_fill(form, form.pdf, 2), cpu_ms_per_fill(form, form.parsed, 2)  # imports and caches warm
    ticks, parsed, kept = machine.cpu_ticks(), [], []
    for _ in range(rounds):
        parsed.append(cpu_ms_per_fill(form, form.pdf, fills))
        kept.append(cpu_ms_per_fill(form, form.parsed, fills))
    steal = machine.steal_percent(machine.steal_share(ticks, machine.cpu_ticks()))
    each, once = statistics.median(parsed), statistics.median(kept)
    print(f"{FORM}, {rounds} alternated rounds of {fills} fills: parsed per fill {each:.1f} ms, "
          f"kept parse {once:.1f} ms CPU per fill ({each / once:.2f}x); steal {steal} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
