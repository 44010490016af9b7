"""Pure PDF rendering: templates by product id, data validation and rendering to bytes.

Imports no redis, flask, sqlalchemy or rq. Typical use:

    template = load_registry(settings.templates_dir).get(product_id)   # UnknownTemplateError
    errors = template.validate(data)                                     # [] when valid
    pdf = template.render(data, progress, code=code)                     # RenderError on bad data
"""

from __future__ import annotations

from render.base import Progress, RenderError, Template, UnknownTemplateError
from render.form_template import FormTemplate, fill_form
from render.minat_bakat import MinatBakatTemplate
from render.registry import TemplateRegistry, clear_registry_cache, load_registry

__all__ = [
    "FormTemplate",
    "MinatBakatTemplate",
    "Progress",
    "RenderError",
    "Template",
    "TemplateRegistry",
    "UnknownTemplateError",
    "clear_registry_cache",
    "fill_form",
    "load_registry",
]
