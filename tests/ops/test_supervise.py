"""The supervisord configuration a start writes: values filled in, programs picked by ROLES."""

from __future__ import annotations

import re

from config import Settings
from ops.supervise import supervisor_env, write_config


def programs_of(tmp_path, **env: str) -> list[str]:
    settings = Settings.from_env({"DATA_DIR": str(tmp_path), **env})
    conf = write_config(settings, supervisor_env(settings, {}))
    text = conf.read_text()
    assert "%(ENV_" not in text  # every value filled in: supervisorctl needs no environment
    return re.findall(r"^\[program:(\w+)\]", text, re.M)


def test_supervise_all_roles_by_default_with_the_embedded_redis(tmp_path) -> None:
    assert programs_of(tmp_path) == ["redis", "api", "pdf_worker", "webhook_worker", "scheduler"]


def test_supervise_roles_pick_the_programs_of_a_host(tmp_path) -> None:
    external = {"REDIS_URL": "redis://127.0.0.1:6379/0"}
    assert programs_of(tmp_path, ROLES="worker,webhook", **external) == ["pdf_worker", "webhook_worker"]
    assert programs_of(tmp_path, ROLES="api,scheduler", **external) == ["api", "scheduler"]


def test_supervise_config_is_private_and_escapes_percent(tmp_path) -> None:
    settings = Settings.from_env({"DATA_DIR": str(tmp_path / "data%1")})
    (tmp_path / "data%1").mkdir()
    conf = write_config(settings, supervisor_env(settings, {}))
    assert conf.stat().st_mode & 0o777 == 0o600
    assert "data%%1" in conf.read_text()
