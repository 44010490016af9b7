"""Errors, the Template interface and helpers shared by every template kind."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

Progress = Callable[[int, str], None]


class RenderError(Exception):
    """A permanent rendering failure (invalid data, broken template): retrying will not help."""

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors: list[dict[str, str]] = errors or []


class UnknownTemplateError(RenderError):
    """No template is registered for the requested product id."""


class TemplateError(RenderError):
    """The template itself is wrong (not the data): says in which file, and where when known."""

    def __init__(self, message: str, *, file: str, line: int | None = None, column: int | None = None,
                 hints: list[str] | None = None) -> None:
        super().__init__(message)
        self.file, self.line, self.column = file, line, column
        self.hints: list[str] = hints or []

    def location(self) -> dict[str, object]:
        """Where the template is wrong: `{"file", "line"?, "column"?, "message", "hints"?}`."""
        found: dict[str, object] = {"file": self.file, "message": self.message}
        found |= {k: v for k, v in (("line", self.line), ("column", self.column)) if v is not None}
        return found | ({"hints": self.hints} if self.hints else {})


class BrokenTemplateError(TemplateError):
    """The product's template could not be loaded; every other product keeps working."""

    def __init__(self, product_id: str, cause: TemplateError) -> None:
        super().__init__(f"the template of {product_id!r} is broken: {cause.message}", file=cause.file,
                         line=cause.line, column=cause.column, hints=cause.hints)
        self.product_id = product_id
        self.reason = cause.message


class Template(ABC):
    """One product: validates its `data` and renders it to PDF bytes."""

    product_id: str
    title: str
    kind: str  # "report" or "form"

    @abstractmethod
    def schema(self) -> dict[str, Any]:
        """Return the JSON Schema of this template's `data`."""

    @abstractmethod
    def validate(self, data: object) -> list[dict[str, str]]:
        """Return field errors (`{"field": "data.x", "message": ...}`); an empty list means valid."""

    @abstractmethod
    def render(self, data: dict[str, Any], progress: Progress | None = None, *, code: str | None = None,
               job_id: str | None = None) -> bytes:
        """Validate `data` and render it; raise RenderError when it is invalid.

        Args:
            progress: called as progress(percent, message), percent of this render step (0-100).
            code: the request's `code`, printed on the document where the template has a place for it.
            job_id: the job's id, the document number of a report (None in a preview).
        """

    def sample(self) -> dict[str, Any] | None:
        """Sample data that a preview renders when given none (None: the template has none)."""
        return None

    def check_data(self, data: object, progress: Progress | None = None) -> None:
        """Raise RenderError listing the field errors of `data`; report the step done when it is valid."""
        errors = self.validate(data)
        if errors:
            raise invalid_data_error(self.product_id, errors)
        report_progress(progress, 10, "data validated")

    def warm_up(self) -> None:  # noqa: B027 - an optional hook: most templates have nothing to warm
        """Do once what a process's first render would otherwise pay for (lazy imports, caches)."""

    def describe(self) -> dict[str, Any]:
        """Return a JSON-friendly summary (product id, title, kind, schema)."""
        return {"productId": self.product_id, "title": self.title, "kind": self.kind, "schema": self.schema()}


def report_progress(progress: Progress | None, percent: int, message: str) -> None:
    """Call the progress callback when one was given."""
    if progress is not None:
        progress(percent, message)


def invalid_data_error(product_id: str, errors: list[dict[str, str]]) -> RenderError:
    """Build the RenderError raised when `data` fails validation."""
    shown = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return RenderError(f"invalid data for {product_id}: {shown}{more}", errors)
