"""Document templates written in Typst: `<productId>.typ` plus the JSON Schema of its data,
`<productId>.schema.json`, in a templates directory. No Python per product.

Each render compiles a small in-memory main file that includes the template, beside an in-memory
`/.pdfjobs/input.json` holding the request's data and the service's meta. Passing them as a file, not as
`sys.inputs`, keeps Typst's standard library (which holds `sys.inputs`) the same from one render to the
next: typst-py builds and hashes a new library whenever `sys.inputs` are set, and everything Typst
memoized against the old one, the `@local/pdfjobs` package's evaluation included, is then done again
(bench/results/2026-12-07-render-instructions.md has the count). A template that
still calls the package's `inputs()` (it reads `sys.inputs`) is found when it loads and served that way.
Templates are set in the fonts of render/fonts/ (embedded, subset) and read files under their own
directory only.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import typst

from render.base import Progress, RenderError, Template, TemplateError, report_progress
from render.context import ReportContext
from render.fonts import FONTS_DIR, FontCoverage, coverage_of, fonts_stamp, uncovered_text_errors
from render.schema import compile_schema, schema_errors

log = logging.getLogger(__name__)

PACKAGES_DIR = Path(__file__).resolve().with_name("typst")  # holds @local/pdfjobs
SCHEMA_SUFFIX = ".schema.json"
INPUT_FILE = ".pdfjobs/input.json"  # `/.pdfjobs/input.json` to the template: in memory, never on disk
MAIN_FILE = "main"  # the in-memory main file; no template can have this name (templates end in .typ)
READS_SYS_INPUTS = "pdfjobs: inputs() reads sys.inputs"  # how the package's inputs() fails without them
_WHERE = re.compile(r"┌─ (?P<file>.+?):(?P<line>\d+):(?P<column>\d+)")


@dataclass(frozen=True)
class Typesetting:
    """The fonts of a registry: those shipped in render/fonts/ plus a templates directory's `fonts/`."""

    font_dirs: tuple[Path, ...] = (FONTS_DIR,)

    @cached_property
    def fonts(self) -> typst.Fonts:
        """Typst's font book (no system fonts, no fonts of Typst's own: a PDF looks the same everywhere)."""
        return _typst_fonts(self.font_dirs, fonts_stamp(self.font_dirs))

    @cached_property
    def coverage(self) -> FontCoverage:
        """Which characters the fonts can show."""
        return coverage_of(self.font_dirs)


@cache
def _typst_fonts(font_dirs: tuple[Path, ...], _stamp: tuple[tuple[str, int, int], ...]) -> typst.Fonts:
    """One font book per set of font files, shared by every template (the stamp keys a changed set)."""
    folders = [str(folder) for folder in font_dirs if folder.is_dir()]
    return typst.Fonts(include_system_fonts=False, include_embedded_fonts=False, font_paths=folders)


def _shown_file(file: str, source: Path) -> str:
    """A file of the diagnostic as its template author knows it: relative to the templates directory."""
    path = Path(file)
    if file.startswith("@") or not (path.is_absolute() or path.exists()):
        return file  # a package file, or the name as Typst gave it
    try:
        return str(path.resolve().relative_to(source.parent))
    except ValueError:
        return file


def template_error(exc: typst.TypstError, source: Path) -> TemplateError:
    """Turn Typst's diagnostic into a TemplateError naming the file, line and column."""
    found = _WHERE.search(exc.diagnostic or "")
    if found is None:
        return TemplateError(f"{source.name}: {exc.message}", file=source.name, hints=list(exc.hints or []))
    file, line, column = _shown_file(found["file"], source), int(found["line"]), int(found["column"])
    # the last step of every trace is the in-memory main file including the template: not the author's
    trace = "; ".join(t for t in exc.trace or [] if not t.endswith(f"while including `{source.name}`"))
    message = f"{file}:{line}:{column}: {exc.message}" + (f" ({trace})" if trace else "")
    return TemplateError(message, file=file, line=line, column=column, hints=list(exc.hints or []))


class TypstTemplate(Template):
    """A report laid out by a Typst template; its data checked against a JSON Schema."""

    kind = "report"

    def __init__(self, source: Path, schema: dict[str, Any], *, typesetting: Typesetting,
                 context: ReportContext) -> None:
        self.product_id = source.stem
        self.source = source
        self._schema = schema
        self.title = str(schema.get("title") or self.product_id)
        self.validator = compile_schema(schema, source.with_suffix(SCHEMA_SUFFIX).name)
        self.typesetting = typesetting
        self.context = context
        self.reads_sys_inputs = False  # set at load for a template that calls the package's inputs()
        self.main = f'#include "{source.name}"'.encode()  # a product id needs no escaping
        self.compiler = self._new_compiler(None, context.constant_inputs())

    def _new_compiler(self, main: str | None, sys_inputs: dict[str, str]) -> typst.Compiler:
        return typst.Compiler(
            main, root=str(self.source.parent), font_paths=self.typesetting.fonts, ignore_system_fonts=True,
            sys_inputs=sys_inputs, package_path=str(PACKAGES_DIR), package_cache_path=str(PACKAGES_DIR),
        )

    @classmethod
    def load(cls, source: Path, *, typesetting: Typesetting, context: ReportContext) -> TypstTemplate:
        """Load `<productId>.typ` and its schema, and render the schema's example once to check both."""
        schema_path = source.parent / (source.stem + SCHEMA_SUFFIX)
        try:
            schema = json.loads(schema_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TemplateError(f"{source.name} has no {schema_path.name} (the JSON Schema of its data) beside it",
                                file=schema_path.name) from None
        except (OSError, ValueError) as exc:
            raise TemplateError(f"{schema_path.name}: cannot read it as JSON: {exc}", file=schema_path.name) from None
        try:
            template = cls(source, schema, typesetting=typesetting, context=context)
        except RenderError as exc:
            raise TemplateError(exc.message, file=schema_path.name) from None
        template.check()
        return template

    def schema(self) -> dict[str, Any]:
        """Return the JSON Schema of this template's data."""
        return self._schema

    def sample(self) -> dict[str, Any]:
        """The first of the schema's `examples`: what a preview renders when given no data."""
        examples = self._schema.get("examples")
        if not isinstance(examples, list) or not examples or not isinstance(examples[0], dict):
            schema_file = self.product_id + SCHEMA_SUFFIX
            raise TemplateError(f"{schema_file} has no `examples` with a sample of the data (needed to check the "
                                f"template and to preview it)", file=schema_file)
        return examples[0]

    def check(self) -> None:
        """Validate the sample against the schema and render it; raise TemplateError saying what is wrong.
        A template that reads `sys.inputs` (the package's `inputs()`) is switched to them here."""
        sample = self.sample()
        problems = self.validate(sample)
        if problems:
            shown = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:3])
            raise TemplateError(f"{self.product_id}{SCHEMA_SUFFIX}: examples[0] does not match the schema: {shown}",
                                file=self.product_id + SCHEMA_SUFFIX)
        try:
            self.compile(sample, code="sample", job_id=None)
        except TemplateError as error:
            if self.reads_sys_inputs or READS_SYS_INPUTS not in error.message:
                raise
            self.read_sys_inputs()
            self.compile(sample, code="sample", job_id=None)

    def read_sys_inputs(self) -> None:
        """Serve this template its data through `sys.inputs`, as the package's `inputs()` expects."""
        log.warning("product=%s event=template_reads_sys_inputs file=%s hint='read the data with "
                    "json(\"/.pdfjobs/input.json\") instead of inputs(): each render costs more CPU this way'",
                    self.product_id, self.source.name)
        self.reads_sys_inputs = True
        self.compiler = self._new_compiler(str(self.source), {})

    def validate(self, data: object) -> list[dict[str, str]]:
        """Schema errors, then the fields with characters no font can show; [] when valid."""
        if not isinstance(data, dict):
            return [{"field": "data", "message": "must be an object"}]
        errors = schema_errors(self.validator, data)
        seen = {error["field"] for error in errors}
        return errors + [e for e in uncovered_text_errors(data, self.typesetting.coverage) if e["field"] not in seen]

    def compile(self, data: dict[str, Any], *, code: str | None, job_id: str | None) -> bytes:
        """Typeset valid `data`; raise TemplateError when the template fails."""
        meta = self.context.meta(product_id=self.product_id, title=self.title, code=code, job_id=job_id)
        # pdf_tags: tags cost ~5 % of a render; text extracts without them
        try:
            if self.reads_sys_inputs:
                pdf = self.compiler.compile(sys_inputs=self.context.inputs(data, meta), timestamp=int(time.time()),
                                            pdf_tags=False)
            else:
                files = {MAIN_FILE: self.main, INPUT_FILE: self.context.input_file(data, meta)}
                pdf = self.compiler.compile(input=files, timestamp=int(time.time()), pdf_tags=False)
        except typst.TypstError as exc:
            raise template_error(exc, self.source) from None
        if not isinstance(pdf, bytes):
            raise TemplateError(f"{self.source.name}: Typst returned no PDF", file=self.source.name)
        return pdf

    def render(self, data: dict[str, Any], progress: Progress | None = None, *, code: str | None = None,
               job_id: str | None = None) -> bytes:
        """Validate `data` and render the report; `job_id` is its document number."""
        self.check_data(data, progress)
        pdf = self.compile(data, code=code, job_id=job_id)
        report_progress(progress, 100, "report rendered")
        return pdf

    def warm_up(self) -> None:
        """Render the sample once more (loading already rendered it: this keeps the caches warm)."""
        self.compile(self.sample(), code="warm-up", job_id="warm-up")
