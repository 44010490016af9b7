"""The rq-dashboard password: printed by `make run` once, when it is generated; shown later by the CLI."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner

from config import Settings
from ops.cli import cli
from ops.clients import dashboard_password
from ops.run import print_banner


def _settings(tmp_path: Path, password: str | None = None) -> Settings:
    return Settings(data_dir=tmp_path / "var", dashboard_password=password, dashboard_username="ops")


def _banner(settings: Settings, capsys) -> str:  # noqa: ANN001
    print_banner(settings, "http://127.0.0.1:8000", None, dashboard_password(settings), Path("x.conf"), 1.0)
    return capsys.readouterr().out


def test_generated_password_is_printed_by_the_first_start_only(tmp_path: Path, capsys) -> None:
    settings = _settings(tmp_path)
    first = _banner(settings, capsys)
    stored = (settings.data_dir / "dashboard-password").read_text()
    assert stored in first and "shown this once" in first
    second = _banner(settings, capsys)
    assert stored not in second and "python -m ops.cli dashboard-password" in second
    assert dashboard_password(settings).value == stored  # the same password every start
    assert stat.S_IMODE((settings.data_dir / "dashboard-password").stat().st_mode) == 0o600


def test_configured_password_is_never_printed(tmp_path: Path, capsys) -> None:
    banner = _banner(_settings(tmp_path, "hunter22"), capsys)
    assert "hunter22" not in banner and "RQ_DASHBOARD_PASSWORD" in banner
    assert not (tmp_path / "var" / "dashboard-password").exists()


def test_cli_dashboard_password_shows_the_generated_one(tmp_path: Path, capsys) -> None:
    settings = _settings(tmp_path)
    _banner(settings, capsys)  # make run's first start generates it
    result = CliRunner().invoke(cli, ["dashboard-password"], env={"DATA_DIR": str(settings.data_dir)})
    assert result.exit_code == 0, result.output
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert lines["password"].strip() == (settings.data_dir / "dashboard-password").read_text()
    assert lines["user"].strip() == "admin"


def test_cli_dashboard_password_shows_rq_dashboard_password(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path / "var"), "RQ_DASHBOARD_PASSWORD": "from-env", "RQ_DASHBOARD_USERNAME": "ops"}
    result = CliRunner().invoke(cli, ["dashboard-password"], env=env)
    assert result.exit_code == 0 and "from-env" in result.stdout and "ops" in result.stdout
    assert not (tmp_path / "var" / "dashboard-password").exists()


def test_cli_dashboard_password_before_any_run_generates_it(tmp_path: Path, capsys) -> None:
    data_dir = tmp_path / "new"
    result = CliRunner().invoke(cli, ["dashboard-password"], env={"DATA_DIR": str(data_dir)})
    assert result.exit_code == 0 and "Generated now" in result.stderr
    password = (data_dir / "dashboard-password").read_text()
    assert password in result.stdout
    assert password not in _banner(_settings(tmp_path).with_changes(data_dir=data_dir), capsys)
