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


def test_prepare_data_dir_makes_data_dir_private_and_tightens_old_files(tmp_path) -> None:
    from ops.supervise import prepare_data_dir

    data_dir = tmp_path / "var"
    (data_dir / "redis").mkdir(parents=True, mode=0o755)
    old = data_dir / "dashboard-password"
    old.write_text("x")
    old.chmod(0o644)
    (data_dir / "redis" / "dump.rdb").write_bytes(b"x")
    (data_dir / "redis" / "dump.rdb").chmod(0o644)
    settings = Settings.from_env({"DATA_DIR": str(data_dir)})
    prepare_data_dir(settings)
    for folder in (data_dir, data_dir / "logs", data_dir / "pdfs", data_dir / "redis"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    for path in (old, data_dir / "redis" / "dump.rdb", data_dir / "redis" / "redis.conf", data_dir / "pdfjobs.sqlite3"):
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_every_program_runs_with_umask_077(tmp_path) -> None:
    settings = Settings.from_env({"DATA_DIR": str(tmp_path)})
    text = write_config(settings, supervisor_env(settings, {})).read_text()
    sections = re.split(r"^\[program:", text, flags=re.M)[1:]
    assert len(sections) == 5 and all("\numask=077\n" in section for section in sections)
