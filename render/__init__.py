"""Pure PDF rendering: templates by product id, data validation and rendering to bytes.

Imports no redis, flask, sqlalchemy or rq. Typical use:

    catalog = TemplateCatalog(settings.templates_dir, context)             # reloads when files change
    template = catalog.get(product_id)              # UnknownTemplateError, BrokenTemplateError
    errors = template.validate(data)                # [] when valid
    pdf = template.render(data, progress, code=code, job_id=job_id)       # RenderError on bad data
"""

from __future__ import annotations

from render.base import (
    BrokenTemplateError,
    Progress,
    RenderError,
    Template,
    TemplateError,
    UnknownTemplateError,
)
from render.context import ReportContext
from render.form_template import FormTemplate, fill_form
from render.registry import TemplateCatalog, TemplateRegistry, build_registry, clear_registry_cache, load_registry
from render.typst_template import TypstTemplate

__all__ = [
    "BrokenTemplateError",
    "FormTemplate",
    "Progress",
    "RenderError",
    "ReportContext",
    "Template",
    "TemplateCatalog",
    "TemplateError",
    "TemplateRegistry",
    "TypstTemplate",
    "UnknownTemplateError",
    "build_registry",
    "clear_registry_cache",
    "fill_form",
    "load_registry",
]
