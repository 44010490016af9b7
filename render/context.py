"""What the service tells every report besides its data: document number, date, organisation, psychologist.

A template reads it as `meta` (docs/report-data.md lists the keys). The caller builds one
`ReportContext` from its settings (REPORT_ORG_NAME, REPORT_LOGO_FILE, ...); render/ reads no settings.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

LOGO_FORMATS = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".gif": "gif", ".svg": "svg", ".webp": "webp"}


@dataclass(frozen=True)
class ReportContext:
    """The organisation's letterhead and the default psychologist of every report."""

    organization_name: str = ""
    organization_address: str = ""
    organization_city: str = ""
    logo_file: Path | None = None
    psychologist_name: str = ""
    psychologist_licence: str = ""
    timezone: str = "UTC"

    @cached_property
    def logo(self) -> tuple[str, str] | None:
        """(format, value for the template's `logo` input): SVG as text, other images as a JSON byte list.

        Typst reads files only under the template's own directory, so the logo travels as an input.
        """
        if self.logo_file is None:
            return None
        fmt = LOGO_FORMATS.get(self.logo_file.suffix.lower())
        if fmt is None:
            raise ValueError(f"logo {self.logo_file} must be one of {', '.join(sorted(LOGO_FORMATS))}")
        raw = self.logo_file.read_bytes()
        return fmt, raw.decode("utf-8") if fmt == "svg" else json.dumps(list(raw), separators=(",", ":"))

    def today(self) -> dt.date:
        """Today's date where the organisation is (REPORT_TIMEZONE)."""
        return dt.datetime.now(ZoneInfo(self.timezone)).date()

    def meta(self, *, product_id: str, title: str, code: str | None, job_id: str | None) -> dict[str, Any]:
        """The `meta` input of one render; `job_id` None means a preview."""
        organization = {"name": self.organization_name, "address": self.organization_address,
                        "city": self.organization_city or None}
        meta: dict[str, Any] = {
            "document_number": job_id or "", "preview": job_id is None, "code": code or None,
            "generated_on": self.today().isoformat(), "product": {"id": product_id, "title": title},
            "organization": organization,
            "psychologist": {"name": self.psychologist_name, "licence": self.psychologist_licence},
        }
        if self.logo is not None:
            meta["logo"] = {"format": self.logo[0]}
        return meta

    def input_file(self, data: dict[str, Any], meta: dict[str, Any]) -> bytes:
        """The `/.pdfjobs/input.json` of one render: `{"data": ..., "meta": ...}`."""
        return json.dumps({"data": data, "meta": meta}, ensure_ascii=False).encode()

    def constant_inputs(self) -> dict[str, str]:
        """The `sys.inputs` every render of this context shares: the logo, when there is one."""
        return {"logo": self.logo[1]} if self.logo is not None else {}

    def inputs(self, data: dict[str, Any], meta: dict[str, Any]) -> dict[str, str]:
        """The `sys.inputs` of one render of a template that reads them (`inputs()`): data, meta and logo."""
        return {"data": json.dumps(data, ensure_ascii=False), "meta": json.dumps(meta, ensure_ascii=False),
                **self.constant_inputs()}
