"""Every setting is documented in .env.example and the README, and .env.example parses."""

from __future__ import annotations

import re
from pathlib import Path

from config import Settings
from config.settings import env_name

ROOT = Path(__file__).resolve().parents[2]


def documented_names(text: str) -> set[str]:
    return set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", text, flags=re.M))


def setting_names() -> set[str]:
    return {env_name(name, field) for name, field in Settings.model_fields.items()}


def test_env_example_lists_every_setting() -> None:
    missing = setting_names() - documented_names((ROOT / ".env.example").read_text())
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_readme_mentions_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = {name for name in setting_names() if name not in readme}
    assert not missing, f"document in README.md: {sorted(missing)}"


def test_env_example_uncommented_values_parse() -> None:
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", (ROOT / ".env.example").read_text(), flags=re.M))
    settings = Settings.from_env(values)
    assert settings.app_env == "development" and settings.port == 8000
