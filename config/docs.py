"""`.env.example`, docs/configuration.md and the README's settings table, generated from the Settings model.

    python -m config.docs env-example > .env.example
    python -m config.docs configuration > docs/configuration.md
    python -m config.docs readme-table      # the block between the README's settings markers
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from config.settings import PROFILES, Settings, env_name

HEADER = """\
# Every setting of the PDF job service, with its default. All are optional.
# Copy to .env and export (set -a; . ./.env; set +a) before `make run`, or set them in your
# process manager. See README.md "Configuration".
# Generated from config/settings.py: python -m config.docs env-example > .env.example
# (tests/config/test_env_example.py fails when this file and the model differ).
"""


def env_value(value: Any) -> str:
    """A default as it is written in the environment: 60,120,240, true, 15, ./var."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    if isinstance(value, float):
        return str(value).removesuffix(".0")
    if isinstance(value, Path) and not value.is_absolute():
        return f"./{value}"
    return str(value)


def _profile_values(name: str) -> list[int]:
    return [profile[name] for profile in PROFILES.values()]


def _is_set(field: FieldInfo) -> bool:
    """Whether the field has a default worth writing out (None and () mean unset)."""
    return field.default_factory is None and field.default is not None and field.default != ()


def default_text(name: str, field: FieldInfo) -> str:
    """The README's default column: `8000`, unset, or the APP_ENV profile's values."""
    if name in PROFILES["development"]:
        return "profile: " + " / ".join(f"`{value}`" for value in _profile_values(name))
    if not _is_set(field):
        return "unset"
    return f"`{env_value(field.default)}`" if env_value(field.default) else "empty"


def description(name: str, field: FieldInfo) -> str:
    """The field's description, plus the APP_ENV profiles' values where they set its default."""
    text = field.description or ""
    if name in PROFILES["development"]:
        by_profile = ", ".join(f"{env} {value}" for env, value in zip(PROFILES, _profile_values(name), strict=True))
        text += f" (default by APP_ENV: {by_profile})"
    return text


def env_example() -> str:
    """The text of `.env.example`: per variable its description, then its default or a commented example."""
    blocks = [HEADER]
    for name, field in Settings.model_fields.items():
        value = env_value(field.default) if _is_set(field) else ""
        line = f"{env_name(name, field)}={value}"
        if not value or name in PROFILES["development"]:  # unset, or set by APP_ENV: commented out
            line = f"#{env_name(name, field)}={field.examples[0] if field.examples else value}"
        blocks.append(f"# {description(name, field)}\n{line}\n")
    return "\n".join(blocks)


# The README's table: one row per area, every variable with its default (the descriptions are in
# docs/configuration.md). A variable whose prefix no area claims lands in "other".
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("service", ("APP_ENV", "PORT", "HOST", "API_PROCESSES", "DATA_DIR", "ROLES", "HOST_NAME", "PUBLIC_BASE_URL",
                 "LOG_LEVEL", "LOOPBACK_ONLY")),
    ("Redis and SQL", ("REDIS_", "EMBEDDED_REDIS_PORT", "DATABASE_URL", "DB_")),
    ("clients and limits", ("API_CLIENTS", "CALLBACK_ALLOWED_HOSTS", "RATE_LIMIT", "RATE_LIMIT_",
                            "MAX_QUEUED_PER_CLIENT", "AUTH_", "SECRETS_", "MAX_BODY_BYTES", "BATCH_",
                            "RQ_DASHBOARD_")),
    ("workers and jobs", ("WORKERS", "WORKER_", "MAX_QUEUE_SIZE", "JOB_", "SYNC_TIMEOUT", "EVENTS_MAX_SECONDS",
                          "CLEANUP_COMPLETED_AFTER", "PDF_RETENTION_DAYS")),
    ("webhooks", ("WEBHOOK_",)),
    ("scheduler", ("RECONCILE_INTERVAL", "STALE_JOB_GRACE", "SCHEDULER_", "SCHEDULE_", "ALERT_")),
    ("storage", ("STORAGE_BACKEND", "S3_", "GOOGLE_DRIVE_", "DROPBOX_")),
    ("templates and reports", ("TEMPLATES_", "PREVIEW_", "REPORT_")),
    ("MongoDB", ("MONGO_",)),
)
README_BEGIN = "<!-- settings: python -m config.docs readme-table -->"
README_END = "<!-- /settings -->"


def _area(name: str) -> str:
    for area, prefixes in AREAS:
        if any(name == prefix or (prefix.endswith("_") and name.startswith(prefix)) for prefix in prefixes):
            return area
    return "other"


def _short_default(name: str, field: FieldInfo) -> str:
    text = default_text(name, field)
    return text.replace("profile: ", "").replace("` / `", "/") if name in PROFILES["development"] else text


def readme_table() -> str:
    """The README's settings table, between its markers: per area, each variable with its default."""
    by_area: dict[str, list[str]] = {}
    for name, field in Settings.model_fields.items():
        variable = env_name(name, field)
        by_area.setdefault(_area(variable), []).append(f"`{variable}` {_short_default(name, field)}")
    rows = [f"| {area} | {', '.join(by_area[area])} |" for area, _ in (*AREAS, ("other", ())) if area in by_area]
    return "\n".join([README_BEGIN, "| area | variables and their defaults |", "|---|---|", *rows, README_END])


def readme_rows() -> list[str]:
    """One markdown table row per variable: | `NAME` | description | default |."""
    return [
        f"| `{env_name(name, field)}` | {description(name, field)} | {default_text(name, field)} |"
        for name, field in Settings.model_fields.items()
    ]


def configuration_page() -> str:
    """docs/configuration.md: every variable with its description and default."""
    return "\n".join([
        "# Configuration",
        "",
        "Every setting is an environment variable, all optional; `.env.example` lists the same with their",
        "defaults. Generated from `config/settings.py` by `python -m config.docs configuration >",
        "docs/configuration.md` (tests/config/test_env_example.py fails when this page and the model differ).",
        "",
        "| variable | meaning | default |",
        "|---|---|---|",
        *readme_rows(),
        "",
    ])


def readme_drift(readme: str) -> str | None:
    """What is wrong with the README's settings block (None when it is the generated one)."""
    if README_BEGIN not in readme or README_END not in readme:
        return f"README.md has no settings block ({README_BEGIN} ... {README_END})"
    block = readme[readme.index(README_BEGIN): readme.index(README_END) + len(README_END)]
    return None if block == readme_table() else "README.md's settings block differs from the model:\n" + readme_table()


def main(argv: list[str] | None = None) -> int:
    """Print `.env.example` or the README rows."""
    parser = argparse.ArgumentParser(prog="python -m config.docs", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["env-example", "configuration", "readme-table"])
    args = parser.parse_args(argv)
    text = {"env-example": env_example, "configuration": configuration_page, "readme-table": readme_table}[args.what]()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
