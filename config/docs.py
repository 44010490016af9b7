"""`.env.example` and the README's configuration rows, generated from the Settings model.

    python -m config.docs env-example > .env.example
    python -m config.docs readme-rows
"""

from __future__ import annotations

import argparse
import re
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
    return f"`{env_value(field.default)}`" if _is_set(field) else "unset"


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


def readme_rows() -> list[str]:
    """One markdown table row per variable: | `NAME` | description | default |."""
    return [
        f"| `{env_name(name, field)}` | {description(name, field)} | {default_text(name, field)} |"
        for name, field in Settings.model_fields.items()
    ]


def missing_readme_rows(readme: str) -> list[str]:
    """The rows whose variable has no table row with the model's default anywhere in `readme`."""
    missing = []
    for row, (name, field) in zip(readme_rows(), Settings.model_fields.items(), strict=True):
        pattern = rf"^\|\s*`{env_name(name, field)}`\s*\|.*\|\s*{re.escape(default_text(name, field))}\s*\|\s*$"
        if not re.search(pattern, readme, flags=re.M):
            missing.append(row)
    return missing


def main(argv: list[str] | None = None) -> int:
    """Print `.env.example` or the README rows."""
    parser = argparse.ArgumentParser(prog="python -m config.docs", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["env-example", "readme-rows"])
    args = parser.parse_args(argv)
    sys.stdout.write(env_example() if args.what == "env-example" else "\n".join(readme_rows()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
