"""The template registry: the built-in templates plus those in TEMPLATES_DIR, reloaded when they change.

A templates directory holds, per product id:
- a document template `<productId>.typ` (Typst) with the JSON Schema of its data, `<productId>.schema.json`;
- or a fillable form `<productId>.pdf` with its field mapping `<productId>.json`.
Files whose name starts with "_" are parts that templates include, and a `fonts/` folder adds fonts.
A template that fails to load is listed as broken with its reason; every other product keeps working.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from render.base import BrokenTemplateError, RenderError, Template, TemplateError, UnknownTemplateError
from render.context import ReportContext
from render.fonts import FONTS_DIR
from render.form_template import PRODUCT_ID_PATTERN, load_form
from render.typst_template import SCHEMA_SUFFIX, Typesetting, TypstTemplate

logger = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().with_name("templates")
BUILTIN_FORMS_DIR = BUILTIN_DIR  # the shipped form lives with the other built-in templates


class TemplateRegistry:
    """Maps product ids to templates, and to the reason a broken one could not be loaded."""

    def __init__(self, templates: Iterable[Template], broken: Iterable[BrokenTemplateError] = ()) -> None:
        self._templates: dict[str, Template] = {}
        for template in templates:
            if template.product_id in self._templates:
                raise RenderError(f"two templates have the product id {template.product_id!r}")
            self._templates[template.product_id] = template
        self._broken = {error.product_id: error for error in broken if error.product_id not in self._templates}

    def get(self, product_id: str) -> Template:
        """Return the template; raise BrokenTemplateError or UnknownTemplateError (listing the known ids)."""
        try:
            return self._templates[product_id]
        except (KeyError, TypeError):
            if isinstance(product_id, str) and product_id in self._broken:
                raise self._broken[product_id] from None
            known = ", ".join(sorted(self._templates))
            raise UnknownTemplateError(f"unknown productId {product_id!r}; known products: {known}") from None

    def all(self) -> list[Template]:
        """Return every working template, sorted by product id."""
        return [self._templates[key] for key in sorted(self._templates)]

    def broken(self) -> list[BrokenTemplateError]:
        """Return the templates that failed to load, sorted by product id."""
        return [self._broken[key] for key in sorted(self._broken)]

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._templates

    def __len__(self) -> int:
        return len(self._templates)


@dataclass
class DirectoryLoad:
    """What one templates directory gave: the templates that load and the errors of those that do not."""

    templates: list[Template]
    broken: list[BrokenTemplateError]


def _candidates(directory: Path) -> dict[str, list[Path]]:
    """The files of each product id in `directory`: .typ + .schema.json, or .json + .pdf."""
    products: dict[str, list[Path]] = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.name.startswith(("_", ".")):
            continue
        if path.name.endswith(SCHEMA_SUFFIX):
            product_id = path.name[: -len(SCHEMA_SUFFIX)]
        elif path.suffix in (".typ", ".json", ".pdf"):
            product_id = path.stem
        else:
            continue
        products.setdefault(product_id, []).append(path)
    return products


def _load_one(product_id: str, files: list[Path], typesetting: Typesetting, context: ReportContext) -> Template:
    """Load one product from its files; raise TemplateError saying what is wrong."""
    names = {path.name for path in files}
    first = files[0].name
    if not PRODUCT_ID_PATTERN.match(product_id):
        raise TemplateError(f"{first}: file name must start with a product id (letters, digits, _ or -)", file=first)
    typ, mapping = f"{product_id}.typ", f"{product_id}.json"
    if typ in names and mapping in names:
        raise TemplateError(f"{product_id} has both a document template ({typ}) and a form mapping ({mapping})",
                            file=typ)
    if typ in names or f"{product_id}{SCHEMA_SUFFIX}" in names:
        if typ not in names:
            raise TemplateError(f"{product_id}{SCHEMA_SUFFIX} has no document template {typ} beside it", file=typ)
        return TypstTemplate.load(files[0].parent / typ, typesetting=typesetting, context=context)
    if mapping not in names:
        raise TemplateError(f"{product_id}.pdf has no field mapping {mapping} beside it", file=mapping)
    return load_form(files[0].parent / mapping, typesetting)


def load_directory(directory: Path, typesetting: Typesetting, context: ReportContext) -> DirectoryLoad:
    """Load every template of `directory`; a broken one is logged and kept with its reason."""
    if not directory.is_dir():  # removed while the service runs (settings check it at start)
        logger.error("event=templates_dir_missing dir=%s", directory)
        return DirectoryLoad([], [])
    loaded = DirectoryLoad([], [])
    for product_id, files in _candidates(directory).items():
        try:
            loaded.templates.append(_load_one(product_id, files, typesetting, context))
        except TemplateError as exc:
            logger.error("event=template_broken product=%s dir=%s error=%r", product_id, directory, exc.message)
            loaded.broken.append(BrokenTemplateError(product_id, exc))
    return loaded


def typesetting_for(templates_dir: Path | None) -> Typesetting:
    """The shipped fonts, plus those in the templates directory's `fonts/` folder when it has one."""
    extra = templates_dir / "fonts" if templates_dir is not None else None
    return Typesetting((FONTS_DIR, extra) if extra is not None and extra.is_dir() else (FONTS_DIR,))


def load_product(product_id: str, templates_dir: Path | None, context: ReportContext) -> Template:
    """Load one product only (a preview): from `templates_dir` first, else the built-ins.

    Raises UnknownTemplateError, or TemplateError saying why it does not load.
    """
    typesetting = typesetting_for(templates_dir)
    for directory in (templates_dir, BUILTIN_DIR):
        if directory is not None and directory.is_dir():
            files = _candidates(directory).get(product_id)
            if files:
                return _load_one(product_id, files, typesetting, context)
    raise UnknownTemplateError(f"unknown productId {product_id!r}")


def build_registry(templates_dir: Path | None, context: ReportContext | None = None) -> TemplateRegistry:
    """Load the built-in templates and those of `templates_dir` (which replace a built-in of the same id)."""
    context = context or ReportContext()
    typesetting = typesetting_for(templates_dir)
    builtin = load_directory(BUILTIN_DIR, typesetting, context)
    chosen: dict[str, Template] = {t.product_id: t for t in builtin.templates}
    broken = {e.product_id: e for e in builtin.broken}
    if templates_dir is not None:
        extra = load_directory(templates_dir, typesetting, context)
        for template in extra.templates:
            if template.product_id in chosen:
                logger.info("event=template_replaces_builtin product=%s dir=%s", template.product_id, templates_dir)
            chosen[template.product_id] = template
            broken.pop(template.product_id, None)
        for error in extra.broken:
            chosen.pop(error.product_id, None)  # a broken replacement must not silently fall back to the built-in
            broken[error.product_id] = error
    registry = TemplateRegistry(chosen.values(), broken.values())
    logger.info("event=templates_loaded count=%s broken=%s dir=%s", len(registry), len(broken), templates_dir)
    return registry


def fingerprint(templates_dir: Path | None) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of a templates directory's files: changes when a file does."""
    if templates_dir is None or not templates_dir.is_dir():
        return ()
    found = []
    for folder in (templates_dir, templates_dir / "fonts"):
        if folder.is_dir():
            for path in folder.iterdir():
                try:
                    stat = path.stat()
                except OSError:  # removed while we looked: the next look sees it gone
                    continue
                found.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(found))


class TemplateCatalog:
    """The registry of one process: reloaded on request (SIGHUP) and when TEMPLATES_DIR changes.

    `reload_interval` seconds (0: never) is how often a lookup may look at the directory's files.
    """

    def __init__(self, templates_dir: Path | None, context: ReportContext | None = None,
                 reload_interval: float = 2.0, extra: tuple[Template, ...] = ()) -> None:
        self.templates_dir = templates_dir.resolve() if templates_dir else None
        self.context = context or ReportContext()
        self.reload_interval = reload_interval
        self.extra = extra  # templates built in code besides the files (the bench's null product)
        self._reload_requested = False
        self._stamp = fingerprint(self.templates_dir)
        self._checked = time.monotonic()
        self._registry = self._with_extra(shared_registry(self.templates_dir, self.context, self._stamp))

    def _with_extra(self, registry: TemplateRegistry) -> TemplateRegistry:
        if not self.extra:
            return registry
        return TemplateRegistry([*registry.all(), *self.extra], registry.broken())

    def request_reload(self) -> None:
        """Reload at the next lookup (safe to call from a signal handler)."""
        self._reload_requested = True

    def reload(self) -> TemplateRegistry:
        """Load every template again now."""
        self._reload_requested = False
        self._stamp = fingerprint(self.templates_dir)
        self._checked = time.monotonic()
        self._registry = self._with_extra(shared_registry(self.templates_dir, self.context, self._stamp, fresh=True))
        logger.info("event=templates_reloaded count=%s broken=%s", len(self._registry), len(self._registry.broken()))
        return self._registry

    def current(self) -> TemplateRegistry:
        """The registry, reloaded first if asked to or if the directory's files changed."""
        if self._reload_requested:
            return self.reload()
        if self.reload_interval > 0 and time.monotonic() - self._checked >= self.reload_interval:
            self._checked = time.monotonic()
            if fingerprint(self.templates_dir) != self._stamp:
                return self.reload()
        return self._registry

    def get(self, product_id: str) -> Template:
        """See TemplateRegistry.get."""
        return self.current().get(product_id)

    def all(self) -> list[Template]:
        """See TemplateRegistry.all."""
        return self.current().all()

    def broken(self) -> list[BrokenTemplateError]:
        """See TemplateRegistry.broken."""
        return self.current().broken()

    def __contains__(self, product_id: object) -> bool:
        return product_id in self.current()

    def __len__(self) -> int:
        return len(self.current())


_SHARED: dict[tuple[Path | None, ReportContext, tuple[tuple[str, int, int], ...]], TemplateRegistry] = {}
SHARED_AT_MOST = 8


def shared_registry(templates_dir: Path | None, context: ReportContext, stamp: tuple[tuple[str, int, int], ...],
                    *, fresh: bool = False) -> TemplateRegistry:
    """The registry of these files and context, built once per process (`fresh`: build it again).

    Loading renders every template's sample: a process that builds several runtimes (tests, tools)
    pays it once per set of files.
    """
    key = (templates_dir, context, stamp)
    if fresh or key not in _SHARED:
        if len(_SHARED) >= SHARED_AT_MOST:
            _SHARED.clear()
        _SHARED[key] = build_registry(templates_dir, context)
    return _SHARED[key]


def load_registry(templates_dir: Path | str | None = None) -> TemplateRegistry:
    """The built-in templates plus those of `templates_dir`, without a letterhead (tools and tests)."""
    directory = Path(templates_dir).resolve() if templates_dir else None
    return shared_registry(directory, ReportContext(), fingerprint(directory))


def clear_registry_cache() -> None:
    """Forget the registries built so far."""
    _SHARED.clear()
