""".env.example and the README's configuration table match the Settings model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config import Settings
from config.docs import configuration_page, env_example, main, readme_drift, readme_rows, readme_table
from config.settings import env_name

ROOT = Path(__file__).resolve().parents[2]
ENV_NAMES = [env_name(name, field) for name, field in Settings.model_fields.items()]


def uncommented_values(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", text, flags=re.M))


def test_env_example_is_generated_from_the_model() -> None:
    # On failure: python -m config.docs env-example > .env.example
    assert (ROOT / ".env.example").read_text() == env_example()


def test_env_example_names_every_variable_once() -> None:
    names = re.findall(r"^#?([A-Z][A-Z0-9_]+)=", env_example(), flags=re.M)
    assert names == ENV_NAMES


def test_env_example_values_are_the_model_defaults() -> None:
    values = uncommented_values(env_example())
    assert Settings.from_env(values) == Settings()
    assert values["DATA_DIR"] == "./var" and values["JOB_RETRY_DELAYS"] == "60,120,240"
    assert "WORKERS" not in values  # set by APP_ENV unless given: commented out, not pinned
    assert "#WORKERS=2" in env_example() and "development 2, staging 3, production 5" in env_example()


def test_env_example_comments_out_unset_variables_with_their_example() -> None:
    text = env_example()
    assert "\n#REDIS_URL=redis://127.0.0.1:6379/0\n" in text and "\n#MONGO_DATA_FIELD=\n" in text
    assert Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6379/0"}).redis_url == "redis://127.0.0.1:6379/0"


def test_readme_rows_give_name_description_and_default() -> None:
    rows = readme_rows()
    assert len(rows) == len(ENV_NAMES)
    assert "| `JOB_RETRY_DELAYS` | Seconds between job retries, comma list" in rows[ENV_NAMES.index("JOB_RETRY_DELAYS")]
    assert rows[ENV_NAMES.index("REDIS_URL")].endswith("| unset |")
    assert rows[ENV_NAMES.index("WORKERS")].endswith("| profile: `2` / `3` / `5` |")


def test_readme_table_names_every_variable_once_with_its_default() -> None:
    table = readme_table()
    for name in ENV_NAMES:
        assert table.count(f"`{name}` ") == 1, name
    assert "`PORT` `8000`" in table and "`WORKERS` `2/3/5`" in table and "`REDIS_URL` unset" in table


def test_readme_settings_block_is_the_generated_one() -> None:
    drift = readme_drift((ROOT / "README.md").read_text())
    assert drift is None, drift
    assert readme_drift(readme_table().replace("`PORT` `8000`", "`PORT` `8080`")) is not None


def test_configuration_page_is_the_generated_one() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert page == configuration_page(), "regenerate: python -m config.docs configuration > docs/configuration.md"
    assert all(row in page for row in readme_rows())


def test_readme_mentions_every_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in ENV_NAMES if name not in readme]
    assert not missing, f"document in README.md: {missing}"


def test_docs_command_prints_env_example_and_readme_rows(capsys: pytest.CaptureFixture[str]) -> None:
    main(["env-example"])
    assert capsys.readouterr().out == env_example()
    main(["readme-table"])
    assert capsys.readouterr().out == readme_table() + "\n"
    main(["configuration"])
    assert capsys.readouterr().out == configuration_page()
