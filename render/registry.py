"""The template registry: built-in templates plus fillable forms found in a templates directory."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from render.base import RenderError, Template, UnknownTemplateError
from render.form_template import load_form
from render.minat_bakat import MinatBakatTemplate

logger = logging.getLogger(__name__)

BUILTIN_FORMS_DIR = Path(__file__).with_name("forms")


class TemplateRegistry:
    """Maps product ids to templates."""

    def __init__(self, templates: Iterable[Template]) -> None:
        self._templates: dict[str, Template] = {}
        for template in templates:
            if template.product_id in self._templates:
                raise RenderError(f"two templates have the product id {template.product_id!r}")
            self._templates[template.product_id] = template

    def get(self, product_id: str) -> Template:
        """Return the template for `product_id`; raise UnknownTemplateError listing the known ids."""
        try:
            return self._templates[product_id]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self._templates))
            raise UnknownTemplateError(f"unknown productId {product_id!r}; known products: {known}") from None

    def all(self) -> list[Template]:
        """Return every template, sorted by product id."""
        return [self._templates[key] for key in sorted(self._templates)]

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._templates

    def __len__(self) -> int:
        return len(self._templates)


def load_forms(directory: Path) -> list[Template]:
    """Load every `<productId>.json` + `<productId>.pdf` pair in `directory`; raise one error listing all problems."""
    if not directory.is_dir():
        raise RenderError(f"templates directory {directory} does not exist or is not a directory")
    forms: list[Template] = []
    problems: list[str] = []
    for mapping_path in sorted(directory.glob("*.json")):
        try:
            forms.append(load_form(mapping_path))
        except RenderError as exc:
            problems.append(exc.message)
    for pdf_path in sorted(directory.glob("*.pdf")):
        if not pdf_path.with_suffix(".json").exists():
            logger.warning("form PDF without a mapping is ignored path=%s", pdf_path)
    if problems:
        raise RenderError("broken form templates: " + " | ".join(problems))
    return forms


@lru_cache(maxsize=8)
def _load(templates_dir: Path | None) -> TemplateRegistry:
    templates: list[Template] = [MinatBakatTemplate(), *load_forms(BUILTIN_FORMS_DIR)]
    if templates_dir is not None:
        templates += load_forms(templates_dir)
    registry = TemplateRegistry(templates)
    logger.info("templates loaded count=%s dir=%s", len(registry), templates_dir)
    return registry


def load_registry(templates_dir: Path | str | None = None) -> TemplateRegistry:
    """Return the built-in templates plus the forms in `templates_dir`, loaded once per directory."""
    return _load(Path(templates_dir).resolve() if templates_dir else None)


def clear_registry_cache() -> None:
    """Forget loaded registries (tests, or after changing files in a templates directory)."""
    _load.cache_clear()
