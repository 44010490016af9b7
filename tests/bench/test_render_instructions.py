"""bench.render_instructions: its child renders the template it is given; without valgrind it says so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench import render_instructions
from render.registry import BUILTIN_DIR


def test_the_counted_child_renders_the_template_of_the_directory(tmp_path: Path) -> None:
    for name in ("minatBakatUmum.typ", "minatBakatUmum.schema.json"):
        shutil.copy(BUILTIN_DIR / name, tmp_path / name)
    render_instructions.render_in_this_process(tmp_path, 2)
    (tmp_path / "minatBakatUmum.typ").write_text("#let x = (")  # a broken template fails to load
    with pytest.raises(Exception, match="minatBakatUmum.typ"):
        render_instructions.render_in_this_process(tmp_path, 1)


def test_without_valgrind_it_counts_nothing_and_says_why(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(render_instructions.shutil, "which", lambda name: None)
    assert render_instructions.main([]) == 2
    assert "needs valgrind" in capsys.readouterr().err
